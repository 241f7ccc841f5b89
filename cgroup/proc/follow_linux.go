package proc

import "github.com/orphand/orphand/proctree"

// handleEvent is called by the connector's reader for each event, in the
// kernel's order. The order is what makes fork events trustworthy: a fork
// is reported before the child runs and before its parent can exit, and a
// pid is reported exiting before it can be reused.
func (b *Backend) handleEvent(ev procEvent) {
	switch ev.what {
	case evFork:
		if ev.pid == ev.tgid { // a new process; a new thread changes nothing
			b.forked(ev)
		}
	case evExit:
		b.exitedEvent(ev)
	}
}

// forked tracks the child of a tracked process. The child is opened by
// pid after the event, so it is accepted only if it started no later than
// the event (a process that reused the pid meanwhile started after it). A
// child already gone is kept as a ghost: the events of its own forks may
// still be queued, and they must be attributed too (a double fork whose
// middle process exits at once is caught this way).
func (b *Backend) forked(ev procEvent) {
	var at uint64
	b.mu.Lock()
	parent := b.index[ev.ptgid] // nil for nearly every fork: one elsewhere on the host
	ok := parent != nil && !parent.g.removed && ev.tgid != b.self
	if ok {
		at = ticks(ev.nsec)
		ok = parent.start <= at
	}
	b.mu.Unlock()
	if !ok {
		// Not tracked; or an event older than the tracked process, made by
		// a previous holder of its pid.
		return
	}
	p, err := proctree.Open(ev.tgid)
	if err == nil && (p.Identity().StartTime > at || p.Exited()) {
		p.Close() // a newcomer with the pid, or already dead: a ghost
		p = nil
	}
	start := at
	if p != nil {
		start = p.Identity().StartTime
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || parent.g.removed || b.index[ev.ptgid] != parent {
		if p != nil {
			p.Close()
		}
		return
	}
	if ex := b.index[ev.tgid]; ex != nil {
		if ex.live() && p != nil && ex.proc.Identity() == p.Identity() {
			p.Close() // a walk found it first
			return
		}
		b.forgetLocked(ex) // a previous holder of the pid whose exit was missed
	}
	b.adoptLocked(parent.g, p, ev.tgid, start)
}

// exitedEvent lets go of a tracked process whose last thread is exiting.
func (b *Backend) exitedEvent(ev procEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.index[ev.tgid]
	if m == nil {
		return
	}
	if m.proc == nil || m.proc.Exited() {
		if ev.pid == ev.tgid || m.leaderGone {
			b.forgetLocked(m)
		}
		return
	}
	if ev.pid != ev.tgid {
		return // a thread of a live process
	}
	// The leader's exit is reported when it begins (its pidfd turns
	// readable later). Read its flags to tell whether it is this member
	// that exits or a previous holder of the pid whose event is late. The
	// leader also "exits" while the process lives on: when another thread
	// calls execve (the old leader dies and the thread takes its pid), or
	// calls pthread_exit; other threads are then still counted.
	st, err := proctree.ReadStat(m.pid)
	switch {
	case err != nil || st.StartTime != m.start:
		b.forgetLocked(m)
	case st.Flags&pfExiting == 0 && !st.IsZombie():
		// Not exiting: the event was about a previous holder of the pid.
	case st.NumThreads > 1:
		m.leaderGone = true // other threads run on and may still fork
	default:
		b.forgetLocked(m)
	}
}

// overflowed is called when the kernel dropped events: whatever they said
// is lost, so ghosts (which only events remove) are dropped and every
// group is walked again.
func (b *Backend) overflowed() {
	b.mu.Lock()
	b.stats.Overflows++
	first := b.stats.Overflows == 1
	var roots []int
	for _, m := range b.index {
		switch {
		case m.proc == nil:
			b.forgetLocked(m)
		case m.proc.Exited():
			b.forgetLocked(m)
		default:
			roots = append(roots, m.pid)
		}
	}
	b.mu.Unlock()
	if first {
		b.log.Warn("proc connector events were lost (receive buffer overflow); walking every group again. A double fork completed meanwhile may escape; raise the receive buffer if this repeats")
	} else {
		b.log.Debug("proc connector events were lost; walking every group again")
	}
	b.settle(roots)
}

// memberExited is the fallback's exit watch: it queues m for the rescan
// loop, which prunes it and walks its group again (it runs on the
// Watcher's goroutine and must not block).
func (b *Backend) memberExited(m *member) {
	b.exitMu.Lock()
	b.exited = append(b.exited, m)
	b.exitMu.Unlock()
	b.wake()
}

// takeExited returns and clears the queue of exited members.
func (b *Backend) takeExited() []*member {
	b.exitMu.Lock()
	defer b.exitMu.Unlock()
	ms := b.exited
	b.exited = nil
	return ms
}
