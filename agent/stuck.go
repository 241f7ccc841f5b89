package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// A kill is stuck when its group is still populated Config.StuckAfter
// after SIGKILL: a process in uninterruptible sleep (D) acts on SIGKILL
// only when its kernel call returns — a hung NFS server, a task frozen by
// a cgroup v1 freezer — and until then it lives on, in its group. Slurm
// calls it an unkillable step and drains the node. The agent cannot do
// more than SIGKILL, so it says so: the group is flagged stuck (in list,
// show and the stuck metrics), a stuck event goes out, and a warning names
// each remaining process with what keeps it (state, wchan, v1 freezer).
// Then it keeps sending SIGKILL, every StuckAfter, off the kill workers;
// when the group empties the flag clears and the killed event says it had
// been stuck. "stuck" is a flag on a killing group, not a state of its
// own: a client that knows the states of protocol v1 reads it as what it
// is, a group being killed.

// maxStuckReported bounds the processes named, one log line each, in a
// stuck report; the rest are counted.
const maxStuckReported = 16

// stuckReportMax is the longest wait between reports of a group still
// stuck (the interval doubles from StuckAfter).
const stuckReportMax = 10 * time.Minute

// emptyWithin runs the kill pipeline for g, giving up after limit (the
// error then wraps context.DeadlineExceeded).
func (a *Agent) emptyWithin(g *group, opts cgroup.KillOptions, limit time.Duration) (cgroup.KillResult, error) {
	ctx, cancel := context.WithTimeout(a.killCtx, limit)
	defer cancel()
	return a.empty(ctx, g, opts)
}

// isStuck reports whether a kill ended by emptyWithin's limit, with the
// agent not stopping.
func (a *Agent) isStuck(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) && a.killCtx.Err() == nil
}

// keepKilling sends SIGKILL to what is left of g and waits, again and
// again, until g is empty or the kill fails or is cancelled. res is what
// the first attempt did; the result counts the most processes any attempt
// found.
func (a *Agent) keepKilling(g *group, res cgroup.KillResult) (cgroup.KillResult, error) {
	interval := a.cfg.StuckAfter
	next := time.Now().Add(interval)
	for {
		r, err := a.emptyWithin(g, cgroup.KillOptions{}, a.cfg.StuckAfter)
		res.Killed = max(res.Killed, r.Killed)
		if r.Method != "" {
			res.Method = r.Method
		}
		if !a.isStuck(err) {
			return res, err
		}
		if now := time.Now(); !now.Before(next) {
			a.reportStuck(g, false)
			interval = min(2*interval, stuckReportMax)
			next = now.Add(interval)
		}
	}
}

// reportStuck logs a warning naming g's remaining processes, and the
// first time flags g stuck, counts it and publishes the stuck event (after
// the log lines: a client told of the event finds them written).
func (a *Agent) reportStuck(g *group, first bool) {
	ctx, cancel := context.WithTimeout(a.killCtx, 10*time.Second)
	defer cancel()
	pids := a.remaining(ctx, g)
	a.mu.Lock()
	since := time.Since(g.trigger)
	a.mu.Unlock()
	msg := "group stuck: still populated after SIGKILL; the agent keeps killing it"
	if !first {
		msg = "group still stuck; the agent keeps killing it"
	}
	a.log.Warn(msg, append(g.logAttrs(ipc.EventStuck), "since_trigger", since.Round(time.Millisecond),
		"stuck_after", a.cfg.StuckAfter, "processes", len(pids))...)
	for i, pid := range pids {
		if i == maxStuckReported {
			a.log.Warn("more processes keep the group stuck", append(g.logAttrs(ipc.EventStuck), "not_listed", len(pids)-i)...)
			break
		}
		a.log.Warn("process survives SIGKILL", append(g.logAttrs(ipc.EventStuck), describeStuck(pid)...)...)
	}
	if !first {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if g.State != ipc.StateKilling || !g.stuckSince.IsZero() {
		return
	}
	g.stuckSince = time.Now()
	a.metrics.stuckChanged(true)
	ms := float64(since.Microseconds()) / 1000
	a.publishLocked(g, ipc.Event{Event: ipc.EventStuck, Members: pids, Millis: &ms})
}

// remaining lists the processes g still holds: its cgroup's members, or a
// watch group's targets that have not exited.
func (a *Agent) remaining(ctx context.Context, g *group) []int {
	a.mu.Lock()
	targets := append([]*proctree.Process(nil), g.targetProcs...)
	a.mu.Unlock()
	if g.cg != nil {
		pids, err := g.cg.Members(ctx)
		if err != nil && !isGone(err) {
			a.log.Warn("cannot list a stuck group's members", "group", g.ID, "err", err)
		}
		return pids
	}
	var pids []int
	for _, t := range targets {
		if !t.Exited() {
			pids = append(pids, t.Pid())
		}
	}
	return pids
}

// unstickLocked clears g's stuck flag, if set, when its kill ends, and
// reports whether it was set.
func (a *Agent) unstickLocked(g *group) bool {
	if g.stuckSince.IsZero() {
		return false
	}
	g.stuckSince = time.Time{}
	a.metrics.stuckChanged(false)
	return true
}

// describeStuck says what is known of why pid outlives SIGKILL: its state,
// the kernel function it waits in, its command line, and what holds it.
func describeStuck(pid int) []any {
	attrs := []any{"member_pid", pid}
	st, err := proctree.ReadStat(pid)
	if err != nil {
		return append(attrs, "why", "gone meanwhile")
	}
	wchan, _ := proctree.ReadWchan(pid)
	cmd, _ := proctree.ReadCmdline(pid, 200)
	if cmd == "" {
		cmd = "[" + st.Comm + "]"
	}
	attrs = append(attrs, "state", string(st.State), "wchan", wchan, "cmdline", cmd)
	fz, _ := cgroup.ReadFreezerV1(pid)
	if fz.Path != "" {
		attrs = append(attrs, "freezer_v1", fz.Path, "freezer_state", fz.State)
	}
	return append(attrs, "why", stuckWhy(st, wchan, fz))
}

// stuckWhy is the likely reason, in words, with what to do about it.
func stuckWhy(st proctree.Stat, wchan string, fz cgroup.FreezerV1) string {
	switch {
	case fz.State == "FROZEN" || fz.State == "FREEZING":
		return fmt.Sprintf("frozen by the cgroup v1 freezer %s: it dies once thawed (echo THAWED > freezer.state)", fz.Path)
	case st.State == 'D':
		return fmt.Sprintf("uninterruptible sleep in %s: it acts on SIGKILL when that kernel call returns (a hung device or network file system?)", orUnknown(wchan))
	case st.IsZombie():
		return fmt.Sprintf("exited, not yet reaped by its parent %d, whose other threads may still run", st.PPid)
	}
	return fmt.Sprintf("state %c: SIGKILL is pending", st.State)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown kernel function"
	}
	return s
}
