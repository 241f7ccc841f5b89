// Package systemd is the cgroup backend for hosts where systemd is PID 1:
// each group is a transient scope unit, orphand-<id>.scope, created over
// D-Bus (org.freedesktop.systemd1.Manager.StartTransientUnit, see
// org.freedesktop.systemd1(5) and systemd.scope(5)), so systemd's view of
// the system stays true and the group obeys the limits of its slice.
//
// Placement: the scope goes into the spawner's current slice, read from the
// spawner's cgroup path (its leading *.slice components), and is bound to
// the unit the spawner runs in (BindsTo= and After=): when that unit stops
// or its main process exits, systemd stops the scope too, with Spec.Stop's
// signal and grace (SIGKILL at once by default). PartOf= would only
// propagate explicit stops and restarts, not a unit that ends by itself,
// so BindsTo= is used. The processes are handed over as pidfds (PIDFDs,
// systemd 253+) or, where systemd refuses that property (252:
// PropertyReadOnly, or UnknownProperty), as pids. The scope has
// Delegate=yes, because systemd only lets AttachProcessesToUnit move
// processes into delegated units, and CollectMode=inactive-or-failed, so it
// is unloaded as soon as it ends however it ends.
//
// Nesting: a group nested in another is not a scope of its own but a
// cgroup inside the outer group's (delegated) scope, made by the agent and
// filled with AttachProcessesToUnit's sub-cgroup argument. The outer scope
// then stays populated while anything nested in it lives — a scope of its
// own would leave the outer one empty when its spawner moves in, and
// systemd ends an empty scope — and killing the outer group's cgroup kills
// everything nested in it, as with the cgroupfs backend. When systemd
// itself stops the outer scope (its bound unit stopped), the nested groups
// end with it, with the outer scope's KillSignal= and TimeoutStopSec=.
//
// A per-user agent's backend (Config.User) talks to the user's own manager
// (systemd --user, reached through internal/sdmanager) instead of the
// system's: its scopes live in the subtree systemd delegates to the user,
// below user@UID.service, and placement reads the spawner's cgroup relative
// to that manager's. A spawner outside that subtree (an ssh session's scope,
// a system service running as the user) has no slice or unit of that
// manager: its scope goes to the manager's default slice (app.slice), bound
// to nothing, and the user manager moves it there through the system
// manager, which lets a user move its own processes into its own manager's
// units.
//
// Kills go through the shared pipeline on the scope's cgroup ([cgroup.FS]),
// not through systemd's KillUnit, so they return only when the group is
// empty. Remove then stops the scope; an emptied scope usually ends and is
// collected on its own before that.
package systemd
