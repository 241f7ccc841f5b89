package policy

import (
	"fmt"
	"slices"
)

// Caller is who sent a request, as the kernel reported it when the client
// connected (SO_PEERCRED).
type Caller struct {
	UID uint32 // effective uid of the connecting process
	GID uint32 // effective gid
	// Pid is the connecting process in the agent's pid namespace, 0 when it
	// is not visible there.
	Pid int
}

// IsRoot reports whether the caller is uid 0 (in the agent's user namespace).
func (c Caller) IsRoot() bool { return c.UID == 0 }

// Process holds the facts about a process the caller wants acted on. The
// agent reads them through a pidfd it verified, so they describe that one
// process.
type Process struct {
	Pid          int
	RealUID      uint32 // Uid: line of /proc/<pid>/status, first field
	SavedUID     uint32 // third field
	KernelThread bool   // PF_KTHREAD in /proc/<pid>/stat
}

// Host holds the facts about the agent's place in the process tree.
type Host struct {
	AgentPid int
	// Ancestors are the agent's ancestors' pids at the time of the check,
	// nearest first. PID 1 is protected whether listed or not.
	Ancestors []int
}

// Denied is a refusal. Its message says why, in words a user can act on.
type Denied struct {
	Reason string
}

func (d *Denied) Error() string { return d.Reason }

func deny(format string, args ...any) error {
	return &Denied{Reason: fmt.Sprintf(format, args...)}
}

// MayAct decides whether c may have the agent act on process t: verb is
// what it asked for ("register", "watch", "attach", ...) and is only used in
// the refusal message. The answer is nil or a [*Denied].
//
// The protected processes come first so that even root is refused them:
// acting on PID 1, the agent or its ancestors would take the host or the
// agent down, and a kernel thread cannot be placed in a group or killed.
func MayAct(c Caller, verb string, t Process, h Host) error {
	switch {
	case t.Pid <= 0:
		return deny("cannot %s pid %d: not a process id", verb, t.Pid)
	case t.Pid == 1:
		return deny("cannot %s pid 1: the init process is never acted on", verb)
	case t.KernelThread:
		return deny("cannot %s pid %d: it is a kernel thread", verb, t.Pid)
	case t.Pid == h.AgentPid:
		return deny("cannot %s pid %d: it is the orphand agent itself", verb, t.Pid)
	case slices.Contains(h.Ancestors, t.Pid):
		return deny("cannot %s pid %d: it is an ancestor of the orphand agent", verb, t.Pid)
	}
	if c.IsRoot() || c.UID == t.RealUID || c.UID == t.SavedUID {
		return nil
	}
	return deny("uid %d may not %s pid %d: it runs as uid %d, and only root or the same user may signal it",
		c.UID, verb, t.Pid, t.RealUID)
}

// MaySee reports whether c may see a group owned by owner (in list, show
// and events).
func MaySee(c Caller, owner uint32) bool { return c.IsRoot() || c.UID == owner }

// MayControl decides whether c may act on group id owned by owner (attach,
// kill, release, nest under it).
func MayControl(c Caller, verb, id string, owner uint32) error {
	if MaySee(c, owner) {
		return nil
	}
	return deny("uid %d may not %s group %s: it belongs to another user", c.UID, verb, id)
}

// MayConnect decides whether c may use a per-user agent, one that serves
// only the uid owner, its user: the answer is nil for the owner, and a
// [*Denied] for anyone else — root included, whose processes such an
// agent could not act on, and a user who reached the socket with
// CAP_DAC_OVERRIDE despite its directory's mode.
func MayConnect(c Caller, owner uint32) error {
	if c.UID == owner {
		return nil
	}
	return deny("this is uid %d's per-user orphand agent, which serves that user only (you are uid %d): use the system agent (orphanctl --system) or your own (systemctl --user enable --now orphand.socket)",
		owner, c.UID)
}
