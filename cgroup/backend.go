package cgroup

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/orphand/orphand/proctree"
)

// This file is the contract between the agent and a backend: the
// interfaces the agent needs from one, and what each method guarantees.
// Every backend implements [Backend] and [Group]; the optional interfaces
// below them say what a backend can do beyond that, and the agent asks for
// them with a type assertion:
//
//	                      cgroupfs  systemd  proc  the agent's test fake
//	Backend, Group        yes       yes      yes   yes
//	DirOpener (group)     yes       yes      -     -
//	Recreator             -         -        yes   -
//	Placer, Placed        -         -        yes   -
//	Tracker               -         -        yes   -
//	Collected (group)     -         yes      -     -
//
// Each implementation asserts it at compile time (var _ cgroup.X = ...).
// Errors: a group that no longer exists makes methods fail with an error
// wrapping [ErrNotFound]; a cgroup removed under a call (with an enclosing
// group) may show as the kernel's ENODEV instead. The agent takes both for
// "gone", and a kill of a gone group for done.

// Backend places processes in groups and finds the groups again.
// Implementations: the cgroupfs backend (directories under a cgroup v2
// subtree the agent owns), the systemd backend (transient scopes created
// over D-Bus) and, where no cgroup v2 is writable, the proc backend
// (descendants tracked by pidfd). Its methods are safe for concurrent use.
type Backend interface {
	// Name is the backend's name as shown to users and recorded with each
	// group: "cgroupfs", "systemd" or "proc".
	Name() string
	// Features reports what was probed when the backend was opened; it
	// does not change afterwards.
	Features() Features
	// Create makes a group and places spec.Pids in it: once it returns,
	// every one of them that still runs is a member (the first, the
	// spawner, must run; the proc backend skips a later one that exited),
	// and whatever a member forks from then on is born a member. The id
	// must not be in use. On failure no group is left and the processes
	// already moved are moved back where they came from, as far as the
	// kernel lets — with one exception, a systemd scope started whose
	// cgroup could not then be read: it may hold the processes, so it is
	// left for the agent's reconciliation of unrecorded groups.
	Create(ctx context.Context, spec Spec) (Group, error)
	// Load finds an existing group again from its Ref, for example after an
	// agent restart. It fails with an error wrapping ErrNotFound when the
	// group no longer exists — always, after a restart, for a backend whose
	// groups do not outlive the agent (see [Recreator]).
	Load(ctx context.Context, ref Ref) (Group, error)
	// Groups lists the groups that exist under the backend's root, recorded
	// or not, each group before the groups nested in it, so that a
	// restarted agent can reconcile.
	Groups(ctx context.Context) ([]Ref, error)
	// Close releases the backend's resources (D-Bus connection, root fd).
	// The groups stay; only the proc backend's end with it.
	Close() error
}

// Spec describes a group to create.
type Spec struct {
	// ID is the agent's group id. Backends derive names from it (a cgroup
	// directory, orphand-<id>.scope) and reject an id that is not
	// [a-z0-9][a-z0-9-]* of at most 64 bytes.
	ID string
	// Parent is the group to nest under, or nil. The cgroup backends make
	// the nested group's cgroup inside the parent's (a systemd backend's
	// nested group is a cgroup in the parent's scope, not a scope), so
	// killing the parent kills it too; the agent also kills nested groups
	// itself, which is what the proc backend relies on.
	Parent Group
	// Description is free text for humans (systemd's Description=).
	Description string
	// Pids are placed in the group at creation (a systemd scope needs at
	// least one). The first is the spawner: the systemd backend puts the
	// scope in the spawner's current slice and binds it to the spawner's
	// unit.
	Pids []int
	// Stop is how the backend itself kills the group when it ends it on
	// its own, without the agent: the systemd backend sets the scope's
	// KillSignal= to Stop.Signal and TimeoutStopSec= to Stop.Grace, used
	// when the unit the scope is bound to stops. The zero value means
	// SIGKILL at once, like a kill with no grace.
	Stop KillOptions
}

// Ref identifies a group durably, for the agent's state records.
type Ref struct {
	ID   string `json:"id"`
	Path string `json:"cgroup,omitempty"` // relative to the cgroup2 mount, "/"-rooted
	Unit string `json:"unit,omitempty"`   // systemd unit name
}

// Group is a set of processes that nothing escapes: membership is inherited
// at fork. All methods are safe for concurrent use.
type Group interface {
	// ID is the agent's group id.
	ID() string
	// Ref returns what the agent persists to Load the group again.
	Ref() Ref
	// Attach moves pid (the whole process, all its threads) into the group;
	// what it forks from then on is born inside. The proc backend also
	// takes pid's descendants that no other group holds.
	Attach(ctx context.Context, pid int) error
	// Members lists the pids in the group and in every group nested in it.
	Members(ctx context.Context) ([]int, error)
	// Kill runs the kill pipeline (see [KillOptions]) and returns only when
	// the group and everything nested in it is empty, or ctx ends. It never
	// reaps: members may still be zombies of their parents. Killing an
	// empty group does nothing (KillResult.Method is "").
	Kill(ctx context.Context, opts KillOptions) (KillResult, error)
	// Remove deletes the group, its nested groups first, retrying EBUSY
	// briefly; a group already gone is no error. Call it on an empty group
	// only: the systemd backend stops a scope, which kills what is left in
	// it (as Spec.Stop says), and the proc backend stops tracking what is
	// left.
	Remove(ctx context.Context) error
}

// DirOpener is implemented by groups backed by a cgroup directory (both
// cgroup backends). OpenDir opens it (O_RDONLY|O_DIRECTORY) so that a
// process can be spawned straight into the group with clone3's
// CLONE_INTO_CGROUP (syscall.SysProcAttr UseCgroupFD/CgroupFD), which is
// cheaper than Attach and leaves no moment outside the group. Do not spawn
// into a group after killing it: on Linux 6.18 a child cloned into a cgroup
// that was once cgroup.kill'ed is SIGKILLed at birth (the kernel compares
// the kill counters of the parent's cgroup and of the target).
type DirOpener interface {
	OpenDir() (*os.File, error)
}

// Recreator is implemented by a backend whose groups do not outlive the
// agent (the proc backend: nothing of a group is kept in the kernel).
// After a restart the agent makes each recorded group again, with the same
// id, around its spawner found again by identity or from systemd's fd
// store. CreateWith is Create with the processes given by pidfd instead of
// by pid (spec.Pids is ignored), so no pid is looked up and none can have
// been reused meanwhile; it duplicates the pidfds, and the caller keeps its
// handles.
type Recreator interface {
	CreateWith(ctx context.Context, spec Spec, ps ...*proctree.Process) (Group, error)
}

// Placer is implemented by a backend whose groups are not cgroups (the
// proc backend). The agent locates processes by place: with a cgroup
// backend, a process's place is its cgroup path (/proc/<pid>/cgroup,
// [ProcessCgroup]), a group's cgroup holds it, and nested groups are
// subdirectories; a Placer says instead which of its groups holds the
// process, as the path of their ids ("/outer/inner"; "" when none), and
// the agent keys such groups by their [Placed] place.
type Placer interface {
	// PlaceOf returns pid's place as the backend knows it now.
	PlaceOf(pid int) string
	// Follow catches up with forks not followed yet that may have made pid
	// a member (queued events; a walk from a tracked ancestor), so that a
	// process forked inside a group moments ago is seen there.
	Follow(ctx context.Context, pid int)
}

// Placed is implemented by the groups of a [Placer]: Place is the group's
// place, the same path PlaceOf gives for its members.
type Placed interface {
	Place() string
}

// Collected is implemented by groups whose cgroup goes away by itself the
// moment it is empty: systemd removes an emptied scope's cgroup at once,
// with every cgroup nested in it. What the agent reads from a group at its
// end (its usage) it must read from such a group before the kill, since
// once the group is empty the files may be gone.
type Collected interface {
	// CollectedWhenEmpty reports whether the group's cgroup may be removed,
	// by someone other than the agent, as soon as it is empty.
	CollectedWhenEmpty() bool
}

// Tracker is implemented by a backend that follows forks itself instead
// of letting the kernel's cgroups do it (the proc backend). The agent
// shows both in hello and status.
type Tracker interface {
	// Tracking names how forks are followed (the proc backend:
	// "proc-connector" or "proc-rescan").
	Tracking() string
	// Limitations says, in plain words, what the backend cannot promise.
	Limitations() []string
}

// KillOptions tunes Group.Kill.
type KillOptions struct {
	// Grace > 0 sends Signal to every member first and waits up to Grace for
	// the group to empty before SIGKILL.
	Grace time.Duration
	// Signal is the polite signal; zero means SIGTERM.
	Signal syscall.Signal
}

// KillResult reports what a kill did.
type KillResult struct {
	// Killed is the number of processes in the group when the kill began,
	// plus any found and killed later by the fallback loop.
	Killed int
	// Duration runs from the call to the group being empty.
	Duration time.Duration
	// Method names the mechanism that emptied the group: "signal" (the
	// polite signal was enough), "cgroup.kill", "freeze+sigkill" (the
	// fallback), "sigkill" (the fallback without a freezer, kernels before
	// 5.2) or "pidfd" (the proc backend). It is empty when nothing had to
	// be done: the group was empty, or emptied by itself meanwhile.
	Method string
}

// Features is what a backend found on the host, shown by the agent's status.
type Features struct {
	Backend  string `json:"backend"`
	Mount    string `json:"mount,omitempty"`   // cgroup2 mountpoint; "" if none
	Layout   string `json:"layout"`            // "unified", "hybrid" or "none"
	Root     string `json:"root,omitempty"`    // the backend's root, relative to Mount
	Kill     bool   `json:"cgroup_kill"`       // cgroup.kill works
	Freeze   bool   `json:"cgroup_freeze"`     // cgroup.freeze works
	Writable bool   `json:"writable"`          // groups can be created
	Openat2  bool   `json:"openat2"`           // cgroup files opened with RESOLVE_BENEATH
	Systemd  string `json:"systemd,omitempty"` // systemd version, systemd backend only
}

// Errors wrapped by backends.
var (
	ErrNotFound    = errors.New("cgroup: group not found")
	ErrInvalidID   = errors.New("cgroup: invalid group id")
	ErrUnavailable = errors.New("cgroup: backend unavailable")
)
