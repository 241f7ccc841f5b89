package proctree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// rescanMax bounds the pause between two walks of the tree while
// KillDescendants waits for signalled processes to exit: a process that
// survives the signal (caught, ignored) may still fork, and only a walk
// finds its new children.
const rescanMax = 100 * time.Millisecond

// KillDescendants sends sig to every descendant of the calling process and
// keeps doing so until none is left running: FreeBSD's PROC_REAP_KILL,
// procctl's "kill, wait, loop until no processes remain". It returns how
// many processes it signalled.
//
// Each round walks the tree ([Descendants]), opens each process by pidfd and
// checks that its parent is still in the tree (so a reused pid is never
// hit), signals each process once through its pidfd, reaps what is ours,
// and waits until one of them exits (by pidfd readiness) or a short pause
// passes. A process cannot fork once SIGKILL is delivered, so with SIGKILL
// the loop ends even against a tree that forks as fast as it can. With a
// signal that can be caught, a process that survives it keeps the loop
// waiting until ctx ends: then KillDescendants returns ctx's error (a grace
// period: call it again with SIGKILL).
//
// It requires the caller to be a child subreaper ([AcquireReaper]) or PID 1,
// and fails with an error wrapping [ErrNotReaper] otherwise: the children of
// a killed process (setsid double forks included) are reparented to the
// nearest subreaper, and only when that is the caller does the next round
// find them.
//
// Reaping has one owner. When a [Reaper] runs, it reaps (and reports the
// statuses on its StatusChannel). Otherwise KillDescendants reaps, by pid
// and never with wait4(-1), only the zombies that are its doing: the
// processes it signalled, and those that became children of the caller
// while it ran (orphans of the processes it killed, which it may never have
// seen alive); it discards their statuses. Zombie children that were
// already there when it started are left alone. Either way, a child that
// someone else will wait for (os/exec, a [ClaimChild] caller) is signalled
// but left to that owner.
func KillDescendants(ctx context.Context, sig syscall.Signal) (int, error) {
	self := os.Getpid()
	if self != 1 {
		sub, err := isSubreaper()
		if err != nil {
			return 0, err
		}
		if !sub {
			return 0, fmt.Errorf("proctree: kill descendants: %w: the orphans of killed processes would escape to PID 1 (call AcquireReaper first, or run as PID 1)", ErrNotReaper)
		}
	}
	w, err := NewWatcher()
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Close() }()
	k := killer{
		sig:       sig,
		self:      self,
		w:         w,
		exited:    make(chan struct{}, 1),
		signalled: map[Identity]bool{},
		ours:      map[Identity]bool{},
		before:    map[Identity]bool{},
	}
	// The children there before any signal: a zombie among them is not
	// KillDescendants' doing. By identity: pids are reused quickly under a
	// fork storm.
	err = readChildren(self, func(pid int) {
		if st, err := readStat(pid); err == nil {
			k.before[Identity{Pid: pid, StartTime: st.StartTime}] = true
		}
	})
	if err != nil {
		return 0, fmt.Errorf("proctree: kill descendants: %w", err)
	}
	pause := time.Millisecond
	quiet := 0 // rounds in a row that found nothing running
	for {
		live, err := k.round()
		k.reap(ctx)
		if err != nil {
			k.release()
			return k.count, err
		}
		if live == 0 {
			k.release()
			// A walk can miss an entry when the list changes under it (see
			// readChildren); a second empty walk makes that all but
			// impossible.
			if quiet++; quiet == 2 {
				return k.count, nil
			}
			continue
		}
		quiet = 0
		t := time.NewTimer(pause)
		select {
		case <-k.exited:
		case <-t.C:
			pause = min(2*pause, rescanMax)
		case <-ctx.Done():
		}
		t.Stop()
		k.release()
		if ctx.Err() != nil {
			return k.count, fmt.Errorf("proctree: kill descendants: %d still running: %w", live, ctx.Err())
		}
	}
}

type killer struct {
	sig       syscall.Signal
	self      int
	w         *Watcher
	exited    chan struct{} // a watched process exited (buffered, 1)
	signalled map[Identity]bool
	ours      map[Identity]bool // to reap: signalled, or orphaned onto us meanwhile
	before    map[Identity]bool // the caller's children before the first signal
	count     int
	held      []*Process
	cancels   []func()
}

// round walks the tree once, signals the processes not yet signalled and
// watches the live ones. It returns how many are still running.
func (k *killer) round() (live int, err error) {
	pids, err := Descendants(k.self)
	if err != nil {
		return 0, err
	}
	tree := make(map[int]bool, len(pids)+1)
	tree[k.self] = true
	for _, pid := range pids {
		tree[pid] = true
	}
	for _, pid := range pids {
		p, err := Open(pid)
		if err != nil {
			continue // gone since the walk
		}
		st := p.stat
		if !tree[st.PPid] {
			p.Close() // a stranger that reused the pid
			continue
		}
		if st.IsZombie() {
			if st.PPid != k.self || !k.before[p.id] {
				k.ours[p.id] = true // dead below us, or orphaned onto us since
			}
			p.Close()
			continue
		}
		live++
		if !k.signalled[p.id] {
			if err := p.Signal(k.sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
				p.Close()
				return live, err
			}
			k.signalled[p.id] = true
			k.ours[p.id] = true
			k.count++
		}
		cancel, err := k.w.Add(p, k.notify)
		if err != nil {
			p.Close()
			return live, err
		}
		k.held = append(k.held, p)
		k.cancels = append(k.cancels, cancel)
	}
	return live, nil
}

func (k *killer) notify() {
	select {
	case k.exited <- struct{}{}:
	default:
	}
}

// release drops the watches and pidfds of the last round.
func (k *killer) release() {
	for _, c := range k.cancels {
		c()
	}
	for _, p := range k.held {
		p.Close()
	}
	k.cancels, k.held = k.cancels[:0], k.held[:0]
}

// reap collects the zombies that are KillDescendants' doing, through the
// running Reaper if there is one, and forgets those that are gone.
func (k *killer) reap(ctx context.Context) {
	if len(k.ours) == 0 {
		return
	}
	only := make(map[int]uint64, len(k.ours)) // a copy: the reaper reads it
	for id := range k.ours {
		only[id.Pid] = id.StartTime
	}
	if r := activeReaper.Load(); r == nil || !r.reapNow(ctx, only) {
		reapPass(0, selector{pid: -1, only: only}, func(ReapStatus) {}) // statuses nobody asked for
	}
	for id := range k.ours {
		if st, err := readStat(id.Pid); err != nil || st.StartTime != id.StartTime {
			delete(k.ours, id) // reaped (its pid may be someone else's now)
		}
	}
}
