package agent

import (
	"crypto/rand"
	"encoding/hex"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/signame"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// Record is what a group is, as plain data: everything a restarted agent
// needs to find and judge the group again. It is what the agent persists
// (as JSON, in package state), at every change of State — each goes through
// Agent.transitionLocked — and before a registration is answered.
type Record struct {
	ID       string              `json:"id"`
	Name     string              `json:"name,omitempty"`
	Kind     string              `json:"kind"`           // ipc.KindSubtree or ipc.KindWatch
	On       string              `json:"on"`             // ipc.OnExit or ipc.OnDisconnect
	OwnerUID uint32              `json:"owner_uid"`      // the registering caller's uid
	Spawner  proctree.Identity   `json:"spawner"`        // the watched process
	Targets  []proctree.Identity `json:"targets"`        // watch groups: what to kill
	Parent   string              `json:"parent"`         // enclosing group's id, if nested
	Signal   string              `json:"signal"`         // polite signal, canonical name
	GraceMS  int64               `json:"grace_ms"`       // grace before SIGKILL
	State    string              `json:"state"`          // ipc.State…
	Backend  string              `json:"backend"`        // backend name at creation
	Ref      cgroup.Ref          `json:"ref"`            // subtree groups: the cgroup / scope
	Created  time.Time           `json:"created"`        //
	Ended    time.Time           `json:"ended,omitzero"` // when it became dead or released
	Killed   int                 `json:"killed"`         // processes killed, once dead

	// Usage is a dead group's final figures, read before its cgroup was
	// removed.
	Usage *ipc.Usage `json:"usage,omitempty"`

	// While killing: why, and when the grace ends (zero: SIGKILL at once),
	// so that a restarted agent resumes the kill where it was.
	KillReason string    `json:"kill_reason,omitempty"`
	KillBy     time.Time `json:"kill_by,omitzero"`
	// Boot is the kernel's boot id when the record was written: after a
	// reboot, pids and start times (even pidfs inodes) start over and may
	// name new processes, so none is looked up again.
	Boot string `json:"boot,omitempty"`

	// Origin is where the group was registered: "" (the agent's socket) or
	// ipc.OriginCompat, a REGISTER on the compatibility socket: a watch
	// group whose one target, CompatChild, is held with its descendants in
	// the cgroup Ref names (compat.go). CompatChild stays when the target
	// is dropped (it exited while no agent ran): an UNREGISTER still finds
	// the group by the pair.
	Origin      string `json:"origin,omitempty"`
	CompatChild int    `json:"compat_child,omitempty"`
}

// placed reports whether the group has a place of the backend's (a
// cgroup, a scope): subtree groups and compat groups. Other watch groups
// hold their targets by pidfd only.
func (r *Record) placed() bool { return r.Kind == ipc.KindSubtree || r.Origin == ipc.OriginCompat }

// stateRegistering is the State of a record written before a subtree
// group's cgroup is created: a restarted agent completes the registration
// if the cgroup exists, and forgets it otherwise. No group in the registry
// is ever in this state.
const stateRegistering = "registering"

// group is a Record plus the live handles the agent holds for it: the
// Record says what the group is (and is what a restart sees), the fields
// below what this agent holds for it now — processes by pidfd, the groups
// it nests in and holds, the kill under way. None shares a name with a
// Record field: g.Spawner is who, g.spawnerProc the handle on it. Unless
// noted, fields are guarded by Agent.mu.
type group struct {
	Record

	cg          cgroup.Group        // subtree groups; immutable after creation
	spawnerProc *proctree.Process   // until the watch holds its own handle (or the group ends); then nil
	targetProcs []*proctree.Process // watch groups; appended by attach

	parentGroup *group            // enclosing group, nil at top level
	children    map[string]*group // groups nested in this one (any state)

	conn        *conn  // on=disconnect: the connection whose end is the trigger
	cancelWatch func() // stops the spawner watch; call without Agent.mu held

	// Set when the kill starts (with Record.KillReason); killDone is closed
	// when it ends (dead, or failed with killErr set and the state still
	// killing).
	trigger   time.Time
	killDone  chan struct{}
	killErr   error
	killAfter *pendingWrite // the kill starts once this write is done (kill requests)

	// stuckSince is set while the group is stuck: still populated
	// Config.StuckAfter after SIGKILL. The kill clears it when it ends.
	stuckSince time.Time

	// usageBeforeKill is what the group had used just before SIGKILL, read
	// only where its cgroup may vanish once empty (cgroup.Collected).
	usageBeforeKill *ipc.Usage

	handlesClosed bool // spawner and targets closed (the group ended)
}

// newGroupID returns 12 random lowercase hex digits: unguessable, and valid
// both as a cgroup directory name and inside a systemd unit name.
func newGroupID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// wire describes g for the protocol; members is the live member count.
func (g *group) wireLocked(members int) ipc.Group {
	r := g.Record
	w := ipc.Group{
		ID:       r.ID,
		Name:     r.Name,
		Kind:     r.Kind,
		OwnerUID: r.OwnerUID,
		Spawner:  ipc.Process{Pid: r.Spawner.Pid, StartTime: r.Spawner.StartTime},
		State:    r.State,
		Backend:  r.Backend,
		Cgroup:   r.Ref.Path,
		Unit:     r.Ref.Unit,
		Members:  members,
		Created:  r.Created,
		On:       r.On,
		Parent:   r.Parent,
		Signal:   r.Signal,
		GraceMS:  r.GraceMS,
		Ended:    r.Ended,
		Killed:   r.Killed,

		Stuck:      !g.stuckSince.IsZero(),
		StuckSince: g.stuckSince,
		Origin:     r.Origin,
	}
	for _, t := range r.Targets {
		w.Targets = append(w.Targets, ipc.Process{Pid: t.Pid, StartTime: t.StartTime})
	}
	return w
}

// logAttrs name g in a log line: in the journal, the fields ORPHAND_GROUP,
// ORPHAND_SPAWNER_PID and ORPHAND_EVENT (event: what happened to it).
func (g *group) logAttrs(event string) []any {
	return []any{"group", g.ID, "spawner_pid", g.Spawner.Pid, "event", event}
}

// root is the process at the root of a placed group's cgroup, while the
// agent holds it: the spawner of a subtree group, the child (the target)
// of a compat group.
func (g *group) root() *proctree.Process {
	if g.Origin == ipc.OriginCompat {
		if len(g.targetProcs) > 0 {
			return g.targetProcs[0]
		}
		return nil
	}
	return g.spawnerProc
}

// hasEnded reports whether the group reached a final state.
func (g *group) hasEnded() bool {
	return g.State == ipc.StateDead || g.State == ipc.StateReleased
}

// descendantsLocked returns the groups nested in g, at any depth, in
// breadth-first order.
func (g *group) descendantsLocked() []*group {
	var out []*group
	queue := []*group{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, c := range cur.children {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Bounds of a new group's settings.
const (
	maxNameLen = 256
	maxGrace   = time.Hour
)

// settings are a new group's trigger and kill settings, from a request.
type settings struct {
	name    string
	on      string
	signal  string // canonical name
	graceMS int64
}

func (a *Agent) settingsFrom(req ipc.Request) (settings, error) {
	s := settings{name: req.Name, on: req.On}
	if len(s.name) > maxNameLen || !utf8.ValidString(s.name) || containsControl(s.name) {
		return s, reqErr(ipc.CodeBadRequest, "name must be at most %d bytes of printable UTF-8", maxNameLen)
	}
	switch s.on {
	case "":
		s.on = ipc.OnExit
	case ipc.OnExit, ipc.OnDisconnect:
	default:
		return s, reqErr(ipc.CodeBadRequest, `"on" must be %q or %q, not %.20q`, ipc.OnExit, ipc.OnDisconnect, s.on)
	}
	sig := a.cfg.DefaultSignal
	if req.Signal != "" {
		var err error
		if sig, err = signame.Parse(req.Signal); err != nil {
			return s, reqErr(ipc.CodeBadRequest, "%v", err)
		}
	}
	s.signal = signame.Name(sig)
	grace, err := a.graceFrom(req.GraceMS, a.cfg.DefaultGrace)
	s.graceMS = grace.Milliseconds()
	return s, err
}

// stop is how a backend that ends the group on its own (a systemd scope
// stopped with the unit it is bound to) kills it: the same polite signal and
// grace as the agent's own kill.
func (s settings) stop() cgroup.KillOptions { return killOptionsOf(s.signal, s.graceMS) }

// graceFrom reads an optional grace_ms, def when absent.
func (a *Agent) graceFrom(ms *int64, def time.Duration) (time.Duration, error) {
	if ms == nil {
		return def, nil
	}
	if *ms < 0 || *ms > maxGrace.Milliseconds() {
		return 0, reqErr(ipc.CodeBadRequest, "grace_ms must be between 0 and %d", maxGrace.Milliseconds())
	}
	return time.Duration(*ms) * time.Millisecond, nil
}

func containsControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// killOptions returns the group's own grace and signal.
func (g *group) killOptions() cgroup.KillOptions { return killOptionsOf(g.Signal, g.GraceMS) }

// killOptionsOf turns a recorded signal name and grace into kill options.
func killOptionsOf(signal string, graceMS int64) cgroup.KillOptions {
	sig, err := signame.Parse(signal)
	if err != nil {
		sig = syscall.SIGTERM
	}
	return cgroup.KillOptions{Grace: time.Duration(graceMS) * time.Millisecond, Signal: sig}
}
