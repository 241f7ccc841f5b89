package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/orphand/orphand/agent/internal/crashpoint"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

// opWatch makes a watch group: the seed's "kill these when that one dies".
// The watched process and every target are held as pidfds from now on, so
// a target whose pid is later reused is never signalled.
func (a *Agent) opWatch(ctx context.Context, c *conn, req ipc.Request, resp *ipc.Response) error {
	if len(req.Kill) == 0 {
		return reqErr(ipc.CodeBadRequest, `watch needs "kill": the pids to kill when "pid" exits`)
	}
	s, err := a.settingsFrom(req)
	if err != nil {
		return err
	}
	pids := slices.Clone(req.Kill)
	slices.Sort(pids)
	pids = slices.Compact(pids)
	a.mu.Lock()
	release, err := a.reserveGroupLocked(c.peer.caller, len(pids))
	a.mu.Unlock()
	if err != nil {
		return err
	}
	defer release()

	host := a.policyHost()
	watched, err := c.target(req.Pid, "watch", host)
	if err != nil {
		return err
	}
	targets := make([]*proctree.Process, 0, len(pids))
	fail := func(err error) error {
		watched.Close()
		for _, t := range targets {
			t.Close()
		}
		return err
	}
	for _, pid := range pids {
		if pid == 0 {
			return fail(reqErr(ipc.CodeBadRequest, `"kill" lists pid 0`))
		}
		t, err := c.target(pid, "kill", host)
		if err != nil {
			return fail(err)
		}
		targets = append(targets, t)
	}
	g := &group{
		Record: Record{
			ID: newGroupID(), Name: s.name, Kind: ipc.KindWatch, On: s.on, OwnerUID: c.peer.caller.UID,
			Spawner: watched.Identity(), Signal: s.signal, GraceMS: s.graceMS,
			Backend: "pidfd", Created: time.Now(),
		},
		spawnerProc: watched,
		targetProcs: targets,
		children:    map[string]*group{},
	}
	for _, t := range targets {
		g.Targets = append(g.Targets, t.Identity())
	}
	if g.On == ipc.OnExit {
		a.storeFDs(spawnerFDName(g.ID), watched)
	}
	a.storeFDs(targetsFDName(g.ID), targets...)
	if err := a.durably(ctx, a.insert(c, g, nil, nil)); err != nil {
		return a.undoRegistration(g, err)
	}
	crashpoint.Reach("watch.persisted", g.ID)
	a.mu.Lock()
	w := g.wireLocked(len(targets))
	a.mu.Unlock()
	resp.Group = &w
	return nil
}

// opAttach adds a process to a group: for a subtree group, the process and
// its descendants that share its cgroup (then children forked meanwhile,
// as at registration); for a watch group, one more target.
func (a *Agent) opAttach(ctx context.Context, c *conn, req ipc.Request, resp *ipc.Response) error {
	caller := c.peer.caller
	a.mu.Lock()
	g, err := a.lookupLocked(caller, "attach to", req.Group)
	if err == nil && g.State != ipc.StateActive {
		err = reqErr(ipc.CodeBadRequest, "group %s is %s; only active groups take new processes", g.ID, g.State)
	}
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if req.Pid == 0 {
		return reqErr(ipc.CodeBadRequest, `attach needs "pid"`)
	}
	host := a.policyHost()
	p, err := c.target(req.Pid, "attach", host)
	if err != nil {
		return err
	}
	if !g.placed() { // a watch group: one more target
		a.storeFDs(targetsFDName(g.ID), p)
		w, err := a.attachTarget(caller, g, p)
		if err != nil {
			return err
		}
		if err := a.durably(ctx, w); err != nil {
			return notDurable(g.ID, fmt.Sprintf("watching pid %d too", p.Pid()), err)
		}
		return nil
	}
	defer p.Close()
	return a.attachSubtree(ctx, caller, host, g, p)
}

// attachTarget adds p to watch group g and returns the write of g's record.
func (a *Agent) attachTarget(caller policy.Caller, g *group, p *proctree.Process) (*pendingWrite, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if g.State != ipc.StateActive {
		p.Close()
		return nil, reqErr(ipc.CodeBadRequest, "group %s is %s; only active groups take new processes", g.ID, g.State)
	}
	if err := a.cfg.Limits.AllowTargets(caller, len(g.targetProcs), 1, a.live.targetUsageLocked(g.OwnerUID)); err != nil {
		p.Close()
		return nil, err
	}
	g.targetProcs = append(g.targetProcs, p)
	g.Targets = append(g.Targets, p.Identity())
	a.live.targetsByUID[g.OwnerUID]++
	return a.recordLocked(g), nil
}

func (a *Agent) attachSubtree(ctx context.Context, caller policy.Caller, host policy.Host, g *group, p *proctree.Process) error {
	origin, err := a.originOf(ctx, p.Pid())
	if err != nil {
		return noSuchProcess(p.Pid(), err)
	}
	a.mu.Lock()
	in := a.enclosingLocked(origin)
	a.mu.Unlock()
	for x := in; x != nil; x = x.parentGroup {
		if x == g {
			return nil // already inside g (or a group nested in it)
		}
	}
	if in != nil {
		return reqErr(ipc.CodeBadRequest, "pid %d is in group %s; kill or release that group first", p.Pid(), in.ID)
	}
	pids, _, err := a.collect(caller, host, p.Pid(), origin, "attach")
	if err != nil {
		return err
	}
	for i, pid := range pids {
		if err := g.cg.Attach(ctx, pid); err != nil && i == 0 {
			if p.Exited() || p.Signal(0) != nil {
				return noSuchProcess(pid, err)
			}
			return err
		}
	}
	if _, err := a.catchEscapees(ctx, g.cg, origin); err != nil {
		a.log.Warn("re-checking a group for children forked during attach failed", "group", g.ID, "err", err)
	}
	return nil
}
