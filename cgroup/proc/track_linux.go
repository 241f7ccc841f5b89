package proc

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/proctree"
)

// pfExiting is PF_EXITING (include/linux/sched.h): set in /proc/<pid>/stat's
// flags when a task starts to exit, before the proc connector reports it.
const pfExiting = 0x00000004

// member is one tracked process.
type member struct {
	pid int
	// start is the process's start time in clock ticks after boot; for a
	// ghost known only from a fork event, that event's time.
	start uint64
	// proc holds the process. It is nil for a ghost: a process known only
	// by pid — gone before it could be opened, or closed after it exited —
	// kept in the index until its exit event so that the forks it made are
	// still attributed to its group (connector only).
	proc *proctree.Process
	g    *Group
	// leaderGone: the exit event of the thread-group leader came while
	// other threads ran on, so the pid stays the process's (connector).
	leaderGone bool
	unwatch    func() // fallback: cancels the exit watch
}

// live reports whether m is a process that has not exited.
func (m *member) live() bool { return m.proc != nil && !m.proc.Exited() }

// openTarget opens a process the caller names for Create or Attach;
// ancestors are the agent's (agentAncestors).
func (b *Backend) openTarget(pid int, ancestors map[int]bool) (*proctree.Process, error) {
	if pid == b.self {
		return nil, fmt.Errorf("pid %d is the agent itself: %w", pid, syscall.EINVAL)
	}
	if ancestors[pid] {
		return nil, fmt.Errorf("pid %d is an ancestor of the agent: %w", pid, syscall.EINVAL)
	}
	p, err := proctree.Open(pid)
	if err != nil {
		return nil, err
	}
	if p.Exited() {
		p.Close()
		return nil, fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
	}
	return p, nil
}

// attachLocked makes p a member of g: an already tracked process moves,
// anything else is adopted. It takes ownership of p.
func (b *Backend) attachLocked(g *Group, p *proctree.Process) {
	pid := p.Pid()
	if ex := b.index[pid]; ex != nil {
		if ex.live() && ex.proc.Identity() == p.Identity() {
			p.Close()
			if ex.g != g {
				delete(ex.g.members, ex)
				ex.g = g
				g.members[ex] = struct{}{}
			}
			return
		}
		b.forgetLocked(ex) // the pid's previous holder, gone
	}
	b.adoptLocked(g, p, pid, p.Identity().StartTime)
}

// adoptLocked adds a member to g and the index. p may be nil (a ghost).
// A member adopted while a kill of g (or of a group g is nested in) is
// under way gets that kill's signal at once.
func (b *Backend) adoptLocked(g *Group, p *proctree.Process, pid int, start uint64) *member {
	m := &member{pid: pid, start: start, proc: p, g: g}
	b.index[pid] = m
	g.members[m] = struct{}{}
	if p == nil {
		return m
	}
	b.stats.Adopted++
	if b.conn == nil {
		if cancel, err := b.watcher.Add(p, func() { b.memberExited(m) }); err == nil {
			m.unwatch = cancel
		}
	}
	b.onSightLocked(m)
	return m
}

// onSightLocked sends a newly adopted member the signal of every kill under
// way on its group or an enclosing one.
func (b *Backend) onSightLocked(m *member) {
	for g := m.g; g != nil; g = g.parent {
		for _, k := range g.kills {
			if k.onSight != 0 {
				k.signalLocked(m, k.onSight)
			}
		}
	}
}

// forgetLocked drops m from its group and the index and closes its pidfd.
func (b *Backend) forgetLocked(m *member) {
	if b.index[m.pid] == m {
		delete(b.index, m.pid)
	}
	delete(m.g.members, m)
	if m.unwatch != nil {
		m.unwatch()
		m.unwatch = nil
	}
	if m.proc != nil {
		m.proc.Close()
		m.proc = nil
	}
}

// pruneLocked lets go of g's members that have exited. With the connector
// they stay in the index as ghosts until their exit event is handled: an
// event queued before the exit may still name them as a parent.
func (b *Backend) pruneLocked(g *Group) {
	for m := range g.members {
		if m.proc == nil || !m.proc.Exited() {
			continue
		}
		if b.conn == nil {
			b.forgetLocked(m)
			continue
		}
		if m.unwatch != nil {
			m.unwatch()
			m.unwatch = nil
		}
		m.proc.Close()
		m.proc = nil
	}
}

// claimFromEnclosing moves into g the descendants of roots that are
// tracked in a group g is nested in: a process placed in a nested group
// takes along what it started while it was in the enclosing one.
func (b *Backend) claimFromEnclosing(g *Group, roots []int) {
	if g.parent == nil {
		return
	}
	var pids []int
	for _, root := range roots {
		ds, _ := proctree.Descendants(root)
		pids = append(pids, ds...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, pid := range pids {
		m := b.index[pid]
		if m == nil || !m.live() || m.g == g || !g.nestedIn(m.g) {
			continue
		}
		// A live member holds its pid: the walk's pid is that process.
		delete(m.g.members, m)
		m.g = g
		g.members[m] = struct{}{}
	}
}

// candidate is a process found by a walk, opened but not yet verified.
type candidate struct {
	p  *proctree.Process
	st proctree.Stat // read after p was opened
}

// adoptDescendants walks the descendants of the given tracked pids and
// adopts those not yet tracked. It returns how many it adopted. Roots
// given parents first walk each process once.
func (b *Backend) adoptDescendants(roots []int) int {
	visited := map[int]bool{}
	var pids []int
	for _, root := range roots {
		if visited[root] {
			continue // walked with an ancestor
		}
		visited[root] = true
		ds, err := proctree.Descendants(root)
		if err != nil && !errors.Is(err, os.ErrProcessDone) {
			b.log.Debug("proc: walking descendants failed", "pid", root, "err", err)
		}
		for _, pid := range ds {
			if !visited[pid] {
				visited[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	b.mu.Lock()
	b.stats.Walks++
	pids = slices.DeleteFunc(pids, func(pid int) bool {
		m := b.index[pid]
		return pid == b.self || m != nil && m.live()
	})
	b.mu.Unlock()
	if len(pids) == 0 {
		return 0
	}
	found := make([]candidate, 0, len(pids))
	for _, pid := range pids {
		p, err := proctree.Open(pid)
		if err != nil {
			continue // gone since the walk
		}
		st, err := proctree.ReadStat(pid)
		if err != nil {
			p.Close()
			continue
		}
		found = append(found, candidate{p: p, st: st})
	}
	ancestors := agentAncestors()
	b.mu.Lock()
	var adopted []*member
	for _, c := range found {
		if m := b.verifyLocked(c, ancestors); m != nil {
			adopted = append(adopted, m)
		}
	}
	b.mu.Unlock()
	b.recheckExiting(adopted)
	return len(adopted)
}

// verifyLocked adopts c into its parent's group if its parent is tracked:
// walks yield pids, and a pid is trusted only once the pidfd opened for it
// is shown to be a child of a tracked process. Candidates come in walk
// order (breadth first), so a parent is adopted before its children.
func (b *Backend) verifyLocked(c candidate, ancestors map[int]bool) *member {
	pid := c.p.Pid()
	reject := func() *member { c.p.Close(); return nil }
	if b.closed || ancestors[pid] {
		return reject()
	}
	ex := b.index[pid]
	if ex != nil && ex.live() {
		return reject() // adopted meanwhile (a fork event)
	}
	parent := b.index[c.st.PPid]
	if parent == nil || parent.proc == nil || parent.g.removed {
		return reject()
	}
	// st describes c.p's process if that process was not reaped before it
	// was read (a pid is reused only after the reap); and st.PPid named
	// the tracked parent if the parent was not reaped when st was read.
	// Both are checked after the read.
	if c.st.StartTime != c.p.Identity().StartTime || c.p.Signal(0) != nil || parent.proc.Signal(0) != nil {
		return reject()
	}
	if dying(c.st) {
		return reject() // it forks no more, and its children are reparented
	}
	if ex != nil {
		b.forgetLocked(ex)
	}
	return b.adoptLocked(parent.g, c.p, pid, c.p.Identity().StartTime)
}

// recheckExiting drops members adopted by a walk that had already begun to
// exit when they were adopted. With the connector, such a member's exit
// event may have been handled before it was in the index, and it would
// then never leave the index. PF_EXITING is set before the exit event is
// sent, so a process not exiting now will have its exit event handled.
func (b *Backend) recheckExiting(adopted []*member) {
	if b.conn == nil || len(adopted) == 0 {
		return
	}
	var gone []*member
	for _, m := range adopted {
		st, err := proctree.ReadStat(m.pid)
		if err != nil || dying(st) || st.StartTime != m.start {
			gone = append(gone, m)
		}
	}
	if len(gone) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range gone {
		if b.index[m.pid] == m {
			b.forgetLocked(m)
		}
	}
}

// dying reports whether a process whose stat is st is exiting: its leader
// is exiting or a zombie, and no other thread is left. (A leader that
// exited alone — pthread_exit, or an execve in another thread, which
// takes over its pid — leaves a living process.)
func dying(st proctree.Stat) bool {
	return (st.IsZombie() || st.Flags&pfExiting != 0) && st.NumThreads <= 1
}

// liveLocked prunes g and the groups nested in it and returns their live
// members, oldest first: a kill then reaches parents before their
// children, so that a supervisor cannot react to its children's deaths.
func (b *Backend) liveLocked(g *Group) []*member {
	var out []*member
	var walk func(*Group)
	walk = func(g *Group) {
		b.pruneLocked(g)
		for m := range g.members {
			if m.live() {
				out = append(out, m)
			}
		}
		for c := range g.children {
			walk(c)
		}
	}
	walk(g)
	slices.SortFunc(out, oldestFirst)
	return out
}

// oldestFirst orders members by start time.
func oldestFirst(x, y *member) int {
	return cmp.Or(cmp.Compare(x.start, y.start), cmp.Compare(x.pid, y.pid))
}

// agentAncestors returns the pids of the agent's ancestors now: they are
// never tracked, so that no group's kill reaches them.
func agentAncestors() map[int]bool {
	out := map[int]bool{1: true}
	pid := os.Getppid()
	for i := 0; pid > 1 && i < 4096; i++ {
		out[pid] = true
		st, err := proctree.ReadStat(pid)
		if err != nil {
			break
		}
		pid = st.PPid
	}
	return out
}

// bootOffset is CLOCK_BOOTTIME - CLOCK_MONOTONIC: the time spent suspended.
func bootOffset() int64 {
	var mono, boot unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono) != nil || unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot) != nil {
		return 0
	}
	return max(boot.Nano()-mono.Nano(), 0)
}
