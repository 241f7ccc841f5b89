package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/orphand/orphand/cgroup"
)

// Kill methods this backend reports in KillResult.Method.
const (
	// MethodPidfd: SIGKILL through the pidfd of every tracked process.
	MethodPidfd = "pidfd"
	// MethodSignal: the polite signal was enough.
	MethodSignal = "signal"
)

const (
	// rescanMax bounds the pause between walks while the fallback waits
	// out a grace period: survivors of the polite signal may fork, and
	// only a walk finds their children.
	rescanMax = 100 * time.Millisecond
	// maxStopPasses bounds the fallback's stop-the-tree passes (each finds
	// only children forked before their parent was stopped).
	maxStopPasses = 64
)

// killState is one Kill under way. Guarded by b.mu.
type killState struct {
	// onSight is sent to members adopted while the kill runs (SIGSTOP or
	// SIGKILL); 0 sends nothing.
	onSight syscall.Signal
	// seen holds every member found running during the kill, whoever
	// signals it (a kill of a nested group may run at the same time): the
	// count, as the contract defines it.
	seen    map[*member]bool
	killed  map[*member]bool // sent SIGKILL
	stopped map[*member]bool // sent SIGSTOP (fallback)
	err     error            // the first failure to signal
}

func newKillState() *killState {
	return &killState{seen: map[*member]bool{}, killed: map[*member]bool{}, stopped: map[*member]bool{}}
}

// liveLocked returns g's live members and counts them as seen.
func (k *killState) liveLocked(b *Backend, g *Group) []*member {
	live := b.liveLocked(g)
	for _, m := range live {
		k.seen[m] = true
	}
	return live
}

// signalLocked sends sig to m through its pidfd: never to a process that
// merely has m's pid now.
func (k *killState) signalLocked(m *member, sig syscall.Signal) {
	if m.proc == nil {
		return
	}
	if err := m.proc.Signal(sig); err != nil {
		if !errors.Is(err, os.ErrProcessDone) && k.err == nil {
			k.err = err
		}
		return
	}
	switch sig {
	case syscall.SIGSTOP:
		k.stopped[m] = true
	case syscall.SIGKILL:
		k.killed[m] = true
	}
	if sig != syscall.SIGCONT {
		k.seen[m] = true
	}
}

// Kill signals every tracked process of g and of the groups nested in it
// through its pidfd, and returns when none is left running (zombies are
// left to their parents; Kill never waits for a process), or ctx ends.
//
//  1. If opts.Grace > 0: opts.Signal (default SIGTERM), then SIGCONT, to
//     every member; wait up to Grace for all to exit, tracking forks
//     meanwhile.
//  2. Fallback only: stop the tree. SIGSTOP every member, walk for
//     children, stop those, and repeat until a walk finds nothing new. A
//     process with a signal pending cannot complete a fork (the kernel
//     checks under the same lock that links the child), so once stopped,
//     a member's children are all visible to the walk — they cannot be
//     reparented out of sight when it dies.
//  3. SIGKILL every member, wait for their exits, catch up with forks,
//     and repeat until nothing tracked is left. A member adopted
//     meanwhile gets SIGKILL at once. With the connector, catching up is
//     a sync after the exits: every fork a member made was reported
//     before its exit, so its children are adopted (and killed) even if
//     they were reparented.
//
// A process that forks as fast as it can still ends: it cannot fork once
// SIGKILL (or SIGSTOP) is pending.
func (g *Group) Kill(ctx context.Context, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	start := time.Now()
	b := g.b
	k := newKillState()
	b.mu.Lock()
	if g.removed {
		b.mu.Unlock()
		return cgroup.KillResult{}, fmt.Errorf("proc: kill %s: %w", g.id, cgroup.ErrNotFound)
	}
	g.kills = append(g.kills, k)
	b.mu.Unlock()

	method, err := g.kill(ctx, opts, k)

	b.mu.Lock()
	g.kills = slices.DeleteFunc(g.kills, func(x *killState) bool { return x == k })
	if err != nil {
		// Never leave a tree stopped by a kill that did not finish.
		for m := range k.stopped {
			if m.live() && !k.killed[m] {
				k.signalLocked(m, syscall.SIGCONT)
			}
		}
	}
	res := cgroup.KillResult{Killed: len(k.seen), Method: method, Duration: time.Since(start)}
	b.mu.Unlock()
	if err != nil {
		return res, fmt.Errorf("proc: kill %s: %w", g.id, err)
	}
	return res, nil
}

func (g *Group) kill(ctx context.Context, opts cgroup.KillOptions, k *killState) (string, error) {
	b := g.b
	if err := g.refresh(ctx); err != nil {
		return "", err
	}
	method := ""
	if opts.Grace > 0 {
		sig := opts.Signal
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		b.mu.Lock()
		live := k.liveLocked(b, g)
		for _, m := range live {
			k.signalLocked(m, sig)
			if sig != syscall.SIGKILL && sig != syscall.SIGCONT {
				k.signalLocked(m, syscall.SIGCONT) // a stopped process must run to act on it
			}
		}
		err := k.err
		b.mu.Unlock()
		if err != nil || len(live) == 0 {
			return "", err
		}
		method = MethodSignal
		empty, err := g.waitEmpty(ctx, time.Now().Add(opts.Grace))
		if err != nil || empty {
			return method, err
		}
	}
	if b.conn == nil {
		if err := g.stopTree(ctx, k); err != nil {
			return method, err
		}
	}
	if err := g.killAll(ctx, k); err != nil {
		return method, err
	}
	b.mu.Lock()
	if len(k.killed) > 0 {
		method = MethodPidfd
	}
	b.mu.Unlock()
	return method, nil
}

// waitEmpty waits until g has no live member or the deadline passes, and
// reports whether g is empty.
func (g *Group) waitEmpty(ctx context.Context, deadline time.Time) (bool, error) {
	b := g.b
	pause := time.Millisecond
	for {
		if err := g.refresh(ctx); err != nil {
			return false, err
		}
		b.mu.Lock()
		live := b.liveLocked(g)
		ew, err := b.watchExitsLocked(live)
		b.mu.Unlock()
		if err != nil {
			return false, err
		}
		if len(live) == 0 {
			return true, nil
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			ew.close()
			return false, nil
		}
		if b.conn == nil {
			// Nothing reports a fork: walk again soon.
			wait = min(wait, pause)
			pause = min(2*pause, rescanMax)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		_ = ew.wait(wctx)
		cancel()
		ew.close()
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
}

// stopTree stops every member of g's tree (the fallback's step 2).
//
// A member that sends SIGCONT to a stopped one in the instant between the
// last two passes can still let that one fork a child that is not seen;
// a tree built to escape has easier ways without the proc connector (a
// quick double fork), which the package doc states.
func (g *Group) stopTree(ctx context.Context, k *killState) error {
	b := g.b
	b.mu.Lock()
	k.onSight = syscall.SIGSTOP
	b.mu.Unlock()
	for pass := range maxStopPasses {
		found := b.adoptDescendants(b.liveRoots(g.subtree()))
		b.mu.Lock()
		for _, m := range k.liveLocked(b, g) {
			k.signalLocked(m, syscall.SIGSTOP)
		}
		err := k.err
		b.mu.Unlock()
		if err != nil {
			return err
		}
		if found == 0 && pass > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// killAll is step 3: SIGKILL, wait for the exits, catch up, repeat.
func (g *Group) killAll(ctx context.Context, k *killState) error {
	b := g.b
	b.mu.Lock()
	k.onSight = syscall.SIGKILL
	b.mu.Unlock()
	for {
		b.mu.Lock()
		live := k.liveLocked(b, g)
		for _, m := range live {
			if !k.killed[m] {
				k.signalLocked(m, syscall.SIGKILL)
			}
		}
		ew, err := b.watchExitsLocked(live)
		if k.err != nil {
			err = k.err
		}
		b.mu.Unlock()
		if err != nil {
			if ew != nil {
				ew.close()
			}
			return err
		}
		err = ew.wait(ctx)
		ew.close()
		if err != nil {
			return err
		}
		// Catch up: with the connector, the forks reported before the
		// exits; in the fallback, a walk (members adopted meanwhile by the
		// rescan loop are live and keep the loop going).
		if err := g.refresh(ctx); err != nil {
			return err
		}
		if len(live) == 0 {
			b.mu.Lock()
			n := len(b.liveLocked(g))
			b.mu.Unlock()
			if n == 0 {
				return nil
			}
		}
	}
}

// exitWait waits for the exits of a set of members through the backend's
// Watcher: one epoll for the whole set, no goroutine per process.
type exitWait struct {
	mu      sync.Mutex
	pending int
	done    chan struct{}
	cancels []func()
}

// watchExitsLocked starts watching the exits of ms.
func (b *Backend) watchExitsLocked(ms []*member) (*exitWait, error) {
	ew := &exitWait{pending: len(ms) + 1, done: make(chan struct{})}
	for _, m := range ms {
		cancel, err := b.watcher.Add(m.proc, ew.fire)
		if err != nil {
			ew.close()
			return nil, err
		}
		ew.cancels = append(ew.cancels, cancel)
	}
	ew.fire() // the guard counted above
	return ew, nil
}

func (ew *exitWait) fire() {
	ew.mu.Lock()
	defer ew.mu.Unlock()
	if ew.pending--; ew.pending == 0 {
		close(ew.done)
	}
}

// wait returns nil once every watched member has exited.
func (ew *exitWait) wait(ctx context.Context) error {
	select {
	case <-ew.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close cancels the watches that have not fired.
func (ew *exitWait) close() {
	for _, c := range ew.cancels {
		c()
	}
	ew.cancels = nil
}
