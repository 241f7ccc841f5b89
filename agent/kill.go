package agent

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/orphand/orphand/agent/internal/crashpoint"
	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// spawnerExited is the watcher's callback. It runs on the watcher's
// goroutine, so it only changes state and starts the kill elsewhere.
func (a *Agent) spawnerExited(g *group) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if g.State != ipc.StateActive {
		return
	}
	a.publishLocked(g, ipc.Event{Event: ipc.EventSpawnerExited, Pid: g.Spawner.Pid, Time: time.Now()})
	a.startKillLocked(g, reasonSpawnerExited, g.killOptions())
}

// startKillLocked moves g, and every group nested in it that is still
// active, to killing and starts a goroutine per group that empties it. g is
// killed with opts; nested groups with their own grace and signal. All are
// marked first, so that each goroutine knows which nested kills to wait for
// before removing its cgroup.
func (a *Agent) startKillLocked(g *group, reason string, opts cgroup.KillOptions) {
	set := []*group{g}
	for _, n := range g.descendantsLocked() {
		if n.State == ipc.StateActive {
			set = append(set, n)
		}
	}
	starts := make([]func(), len(set))
	for i, x := range set {
		why, o := reason, opts
		if i > 0 {
			why, o = reasonParent, x.killOptions()
		}
		starts[i] = a.prepareKillLocked(x, why, o)
	}
	if reason == reasonRequest {
		a.persistBeforeKillLocked(set...)
	}
	for _, start := range starts {
		start()
	}
}

// beginKillLocked starts the kill of one group: an active one, or one whose
// last kill failed.
func (a *Agent) beginKillLocked(g *group, reason string, opts cgroup.KillOptions) {
	start := a.prepareKillLocked(g, reason, opts)
	if reason == reasonRequest {
		a.persistBeforeKillLocked(g)
	}
	start()
}

// persistBeforeKillLocked makes the kills of set wait until their killing
// records are on disk (one write holds them all). A kill request, unlike a
// trigger, cannot be derived again after a restart: the records must say
// killing before anything is signalled, so that a restarted agent finishes
// the kill. A trigger's kill starts at once (a restarted agent sees the
// spawner dead, or the connection gone, and kills anyway).
func (a *Agent) persistBeforeKillLocked(set ...*group) {
	if w := a.pendingLocked(set[0].ID); w != nil {
		for _, x := range set {
			x.killAfter = w
		}
	}
}

// prepareKillLocked moves g to killing and returns the function that starts
// its kill goroutine (to be called with a.mu still held).
func (a *Agent) prepareKillLocked(g *group, reason string, opts cgroup.KillOptions) (start func()) {
	g.KillReason, g.KillBy = reason, time.Time{}
	if opts.Grace > 0 {
		g.KillBy = time.Now().Add(opts.Grace) // a restarted agent waits out the rest
	}
	if g.State == ipc.StateActive {
		a.metrics.killStarted(reason)
		a.transitionLocked(g, ipc.StateKilling, ipc.Event{Event: ipc.EventKilling, Reason: reason})
	} else {
		a.recordLocked(g) // a retried or resumed kill: same state, new deadline
	}
	g.trigger, g.killErr = time.Now(), nil
	g.killDone = make(chan struct{})
	cancel := g.cancelWatch
	g.cancelWatch = nil
	if g.conn != nil {
		delete(g.conn.onDisconnect, g.ID)
		g.conn = nil
	}
	return func() {
		var nested []<-chan struct{}
		for _, n := range g.descendantsLocked() {
			if n.State == ipc.StateKilling {
				nested = append(nested, n.killDone)
			}
		}
		after := g.killAfter
		g.killAfter = nil
		if after == nil {
			a.queueKill(g, opts, cancel, nested)
			return
		}
		a.work.Async(func() {
			if err := a.durably(a.killCtx, after); err != nil {
				a.log.Warn("killing a group whose killing state may not be on disk", "group", g.ID, "err", err)
			}
			crashpoint.Reach("kill.persisted", g.ID)
			a.queueKill(g, opts, cancel, nested)
		})
	}
}

// runKill empties g on a worker, off the watcher's path: cancel stops the
// spawner watch; nested are the kills of groups inside g started with it,
// whose cgroups must be gone before g's is removed. polite is what the
// grace phase did, when it ran first (see queueKill). A group still
// populated Config.StuckAfter after SIGKILL is stuck: it is reported, and
// killed again until empty on a goroutine of its own, so that stuck groups
// hold no worker (stuck.go).
func (a *Agent) runKill(g *group, opts cgroup.KillOptions, cancel func(), nested []<-chan struct{}, polite cgroup.KillResult) {
	if cancel != nil {
		cancel()
	}
	a.readUsageBeforeKill(g) // a systemd scope's cgroup is gone the moment it is empty
	res, err := a.emptyWithin(g, opts, a.cfg.StuckAfter)
	if a.isStuck(err) {
		a.work.Async(func() {
			a.reportStuck(g, true)
			res, err := a.keepKilling(g, res)
			emptied := time.Now()
			a.work.Push(func() { a.afterEmpty(g, nested, mergeKill(polite, res), emptied, err) })
		})
		return
	}
	a.afterEmpty(g, nested, mergeKill(polite, res), time.Now(), err)
}

// afterEmpty finishes g's kill once the pipeline returned: emptied is when
// (the killed event times trigger → empty, not the cleanup after). Waiting
// for the nested kills holds no worker: the removal is queued again once
// they are done.
func (a *Agent) afterEmpty(g *group, nested []<-chan struct{}, res cgroup.KillResult, emptied time.Time, err error) {
	if err == nil {
		crashpoint.Reach("kill.emptied", g.ID)
	}
	if err != nil || g.cg == nil {
		a.finishKill(g, res, emptied, err)
		return
	}
	var waiting []<-chan struct{}
	for _, done := range nested {
		select {
		case <-done:
		default:
			waiting = append(waiting, done)
		}
	}
	if len(waiting) == 0 {
		a.removeAndFinish(g, res, emptied)
		return
	}
	a.work.Async(func() {
		for _, done := range waiting {
			select {
			case <-done:
			case <-a.killCtx.Done():
			}
		}
		a.work.Push(func() { a.removeAndFinish(g, res, emptied) })
	})
}

// removeAndFinish removes an emptied group's cgroup (or stops its scope)
// and records the end of its kill.
func (a *Agent) removeAndFinish(g *group, res cgroup.KillResult, emptied time.Time) {
	a.readFinalUsage(g)
	if err := g.cg.Remove(a.killCtx); err != nil && !isGone(err) {
		a.log.Warn("group emptied but its cgroup could not be removed yet; will retry", "group", g.ID, "err", err)
		a.mu.Lock()
		a.lingerLocked(g)
		a.mu.Unlock()
	}
	a.finishKill(g, res, emptied, nil)
}

// empty runs the kill pipeline for g.
func (a *Agent) empty(ctx context.Context, g *group, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	if g.cg != nil {
		res, err := g.cg.Kill(ctx, opts)
		if isGone(err) {
			return cgroup.KillResult{Method: "gone"}, nil // removed with an enclosing group
		}
		return res, err
	}
	a.mu.Lock()
	targets := append([]*proctree.Process(nil), g.targetProcs...)
	a.mu.Unlock()
	return killTargets(ctx, targets, opts)
}

// finishKill records the end of a kill; emptied is when the group became
// empty.
func (a *Agent) finishKill(g *group, res cgroup.KillResult, emptied time.Time, err error) {
	if err == nil {
		// Before anyone can see the group dead: whoever then looks (a kill
		// request's answer, an event, show) finds its pidfds gone from the
		// fd store too. A crash in between leaves names for an ending group,
		// which the next start drops (syncFDStore).
		a.unstoreGroupFDs(g)
	}
	a.mu.Lock()
	wasStuck := a.unstickLocked(g)
	if err != nil {
		g.killErr = err
		close(g.killDone)
		a.mu.Unlock()
		a.log.Error("kill failed; the group stays in state killing (a kill request retries it)",
			append(g.logAttrs("kill_failed"), "err", err)...)
		return
	}
	g.Killed = res.Killed
	a.metrics.killEnded(emptied.Sub(g.trigger), res.Killed)
	ms := float64(emptied.Sub(g.trigger).Microseconds()) / 1000
	killed := res.Killed
	a.transitionLocked(g, ipc.StateDead, ipc.Event{Event: ipc.EventKilled, Killed: &killed, Millis: &ms, Stuck: wasStuck, Usage: g.Usage})
	close(g.killDone)
	a.mu.Unlock()
	attrs := append(g.logAttrs(ipc.EventKilled), "reason", g.KillReason, "killed", res.Killed, "method", res.Method, "ms", ms)
	if wasStuck {
		attrs = append(attrs, "was_stuck", true)
	}
	a.log.Info("group killed", attrs...)
	a.closeHandles(g)
}

// killTargets is the kill pipeline of a watch group, through pidfds only
// (a target whose pid was reused is never hit): the polite signal, up to
// grace for them to exit, SIGKILL to the rest, then wait until every
// target has exited. It counts the targets that were alive.
func killTargets(ctx context.Context, targets []*proctree.Process, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	start := time.Now()
	var alive []*proctree.Process
	for _, p := range targets {
		if !p.Exited() {
			alive = append(alive, p)
		}
	}
	res := cgroup.KillResult{Killed: len(alive), Method: "pidfd"}
	if opts.Grace > 0 && len(alive) > 0 {
		sig := opts.Signal
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		signalAll(alive, sig)
		gctx, cancel := context.WithTimeout(ctx, opts.Grace)
		err := waitAll(gctx, alive)
		cancel()
		if err == nil {
			res.Method, res.Duration = "signal", time.Since(start)
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	signalAll(alive, syscall.SIGKILL)
	if err := waitAll(ctx, alive); err != nil {
		return res, fmt.Errorf("wait for watch targets to exit: %w", err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

func signalAll(ps []*proctree.Process, sig syscall.Signal) {
	for _, p := range ps {
		_ = p.Signal(sig) // an exited target is fine
	}
}

// waitAll waits until every process has exited.
func waitAll(ctx context.Context, ps []*proctree.Process) error {
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
	return nil
}

// closeHandles releases g's pidfds once it has ended.
func (a *Agent) closeHandles(g *group) {
	a.mu.Lock()
	if g.handlesClosed {
		a.mu.Unlock()
		return
	}
	g.handlesClosed = true
	spawner, targets := g.spawnerProc, g.targetProcs
	cancel := g.cancelWatch
	g.cancelWatch = nil
	a.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if spawner != nil {
		spawner.Close()
	}
	for _, t := range targets {
		t.Close()
	}
}

// isGone reports an error that means the cgroup no longer exists: the
// backend's ErrNotFound, or the kernel's ENODEV/ENOENT for files of a
// cgroup removed under us (an enclosing group's removal takes nested ones).
func isGone(err error) bool {
	return errors.Is(err, cgroup.ErrNotFound) || errors.Is(err, syscall.ENODEV)
}
