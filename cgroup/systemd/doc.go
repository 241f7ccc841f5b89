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
// Scopes cannot nest: a nested group's scope is created beside its parent,
// in the same slice, and bound to the parent's scope. Killing the parent
// group does not kill it through the cgroup tree; the agent kills nested
// groups itself (and systemd stops the nested scope once the parent's scope
// ends).
//
// Kills go through the shared pipeline on the scope's cgroup ([cgroup.FS]),
// not through systemd's KillUnit, so they return only when the group is
// empty. Remove then stops the scope; an emptied scope usually ends and is
// collected on its own before that.
package systemd
