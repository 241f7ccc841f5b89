package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/orphand/orphand/proctree"
)

// startReaper makes the agent a child subreaper that reaps whatever lands
// on it, when Config.Subreaper is set, and returns the function that stops
// the reaper and waits for it. The reaper never takes an exit status that
// os/exec waits for (see proctree). If the process already runs a reaper
// (orphand init hosting the agent), that one keeps the job.
func (a *Agent) startReaper(ctx context.Context) (stop func(), err error) {
	if !a.cfg.Subreaper {
		return func() {}, nil
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r, err := proctree.StartReaper(rctx, proctree.ReaperConfig{EnableChildSubreaper: true, Logger: a.log})
	switch {
	case errors.Is(err, proctree.ErrReaperRunning):
		cancel()
		a.log.Info("a reaper already runs in this process: it reaps for the agent")
		return func() {}, nil
	case err != nil:
		cancel()
		return nil, fmt.Errorf("agent: become a subreaper: %w", err)
	}
	a.log.Info("child subreaper: reaping orphans that land on the agent")
	return func() { cancel(); r.Wait() }, nil
}
