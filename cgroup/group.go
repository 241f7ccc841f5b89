package cgroup

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// Backend places processes in groups. Implementations: the cgroupfs backend
// (directories under a cgroup v2 subtree the agent owns), the systemd
// backend (transient scopes created over D-Bus) and, where no cgroup v2 is
// writable, the proc backend (descendants tracked by pidfd).
type Backend interface {
	// Name is the backend's name as shown to users: "cgroupfs", "systemd"
	// or "proc".
	Name() string
	// Features reports what was probed when the backend was opened.
	Features() Features
	// Create makes a group and places spec.Pids in it.
	Create(ctx context.Context, spec Spec) (Group, error)
	// Load finds an existing group again from its Ref, for example after an
	// agent restart. It fails with an error wrapping ErrNotFound when the
	// group no longer exists.
	Load(ctx context.Context, ref Ref) (Group, error)
	// Groups lists the groups that exist under the backend's root, recorded
	// or not, so that a restarted agent can reconcile.
	Groups(ctx context.Context) ([]Ref, error)
	// Close releases the backend's resources (D-Bus connection, root fd).
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
	// Attach moves pid (the whole process, all its threads) into the group.
	Attach(ctx context.Context, pid int) error
	// Members lists the pids in the group and in every group nested in it.
	Members(ctx context.Context) ([]int, error)
	// Kill runs the kill pipeline and returns only when the group (and
	// everything nested in it) is empty, or ctx ends.
	Kill(ctx context.Context, opts KillOptions) (KillResult, error)
	// Remove deletes the (empty) group: its nested groups first, retrying
	// EBUSY briefly; for systemd, stops the scope.
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
