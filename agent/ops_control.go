package agent

import (
	"context"

	"github.com/orphand/orphand/ipc"
)

// opKill kills a group now (and every group nested in it) and answers once
// it is empty. Killing a group that is being killed waits for that kill;
// killing a dead group answers with what its kill counted.
func (a *Agent) opKill(ctx context.Context, c *conn, req ipc.Request, resp *ipc.Response) error {
	a.mu.Lock()
	g, err := a.lookupLocked(c.peer.caller, "kill", req.Group)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	grace, err := a.graceFrom(req.GraceMS, 0)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	opts := g.killOptions()
	if req.GraceMS != nil {
		opts.Grace = grace
	}
	switch {
	case g.State == ipc.StateActive:
		a.startKillLocked(g, reasonRequest, opts)
	case g.State == ipc.StateKilling && g.killErr != nil:
		a.beginKillLocked(g, reasonRequest, opts) // the last attempt failed: try again
	case g.State == ipc.StateReleased:
		a.mu.Unlock()
		return reqErr(ipc.CodeBadRequest, "group %s was released: the agent no longer controls its processes", g.ID)
	}
	done := g.killDone
	a.mu.Unlock()

	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if g.killErr != nil {
		return reqErr(ipc.CodeInternal, "killing group %s failed: %v", g.ID, g.killErr)
	}
	n := g.Killed
	resp.Killed = &n
	return nil
}

// opRelease stops watching a group and leaves its processes alone. Its
// cgroup (cgroupfs) stays until it is empty and is then removed by the
// agent; a systemd scope is left to systemd, which collects it when empty.
// Groups nested in it stay active. Releasing a released group is a no-op.
func (a *Agent) opRelease(ctx context.Context, c *conn, req ipc.Request, _ *ipc.Response) error {
	a.mu.Lock()
	g, err := a.lookupLocked(c.peer.caller, "release", req.Group)
	if err != nil {
		a.mu.Unlock()
		return err
	}
	switch g.State {
	case ipc.StateReleased:
		a.mu.Unlock()
		return nil
	case ipc.StateKilling, ipc.StateDead:
		a.mu.Unlock()
		return reqErr(ipc.CodeBadRequest, "group %s is %s; it can no longer be released", g.ID, g.State)
	}
	if g.conn != nil {
		delete(g.conn.onDisconnect, g.ID)
		g.conn = nil
	}
	a.transitionLocked(g, ipc.StateReleased, ipc.Event{Event: ipc.EventReleased})
	a.lingerLocked(g)
	w := a.pendingLocked(g.ID)
	a.mu.Unlock()
	a.unstoreGroupFDs(g)
	a.closeHandles(g) // also cancels the spawner watch
	// Answered once on disk: a restarted agent must not watch it again.
	if err := a.durably(ctx, w); err != nil {
		return notDurable(g.ID, "released", err)
	}
	return nil
}

// opSubscribe turns the connection into an event stream once the ok
// response is written. A named group must exist and be the caller's.
func (a *Agent) opSubscribe(_ context.Context, c *conn, req ipc.Request, _ *ipc.Response) error {
	if req.Group != "" {
		a.mu.Lock()
		_, err := a.lookupLocked(c.peer.caller, "subscribe to", req.Group)
		a.mu.Unlock()
		if err != nil {
			return err
		}
	}
	a.addSubscriber(c, req.Group)
	return nil
}
