package agent

import (
	"context"

	"github.com/orphand/orphand/cgroup"
)

// queueKill hands g's kill to the workers. A kill with a grace first waits
// the grace out on a goroutine of its own and only then takes a worker for
// the SIGKILL, the wait for empty and the removal. Were the grace spent on
// a worker, one user's groups that ignore the polite signal, with a grace
// of up to an hour each, could hold every worker and delay other users'
// kills for that long; and a thousand groups dying at once with a grace of
// 5 s would take 5 s × 1000 / ParallelKills to kill. The wait costs a
// goroutine and an inotify watch or a pidfd wait per group, no thread.
func (a *Agent) queueKill(g *group, opts cgroup.KillOptions, cancel func(), nested []<-chan struct{}) {
	if opts.Grace <= 0 {
		a.work.Push(func() { a.runKill(g, opts, cancel, nested, cgroup.KillResult{}) })
		return
	}
	a.work.Async(func() {
		if cancel != nil {
			cancel()
		}
		polite := a.politePhase(g, opts)
		rest := opts
		rest.Grace = 0
		a.work.Push(func() { a.runKill(g, rest, nil, nested, polite) })
	})
}

// politePhase sends g's polite signal and waits up to the grace for the
// group to empty. The pipeline stops at the end of the grace (its context
// ends) before its SIGKILL step; the worker that follows does that step.
func (a *Agent) politePhase(g *group, opts cgroup.KillOptions) cgroup.KillResult {
	ctx, cancel := context.WithTimeout(a.killCtx, opts.Grace)
	defer cancel()
	res, err := a.empty(ctx, g, opts)
	if err != nil {
		res.Method = "" // not emptied by the signal: the SIGKILL step names the method
	}
	return res
}

// mergeKill combines what the polite phase and the SIGKILL step did: the
// count is the larger (the polite phase counted every member when it
// began; the SIGKILL step counts the survivors and anything forked since),
// the method the one that emptied the group.
func mergeKill(polite, rest cgroup.KillResult) cgroup.KillResult {
	rest.Killed = max(polite.Killed, rest.Killed)
	if rest.Method == "" {
		rest.Method = polite.Method
	}
	rest.Duration += polite.Duration
	return rest
}
