package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// group rebuilds one group from its record, or returns nil when there is
// nothing to take over.
func (r *restoring) group(ctx context.Context, rec Record) *group {
	a := r.a
	g := &group{Record: rec, children: map[string]*group{}}
	if g.State == stateRegistering && !r.listed {
		r.st.failed++ // cannot tell whether its cgroup exists: keep the record
		return nil
	}
	if g.State == stateRegistering {
		ref, ok := r.refs[g.ID]
		if !ok || !g.placed() {
			// Cut short before its cgroup existed: nothing was moved.
			a.mu.Lock()
			a.queueLocked(g.ID, nil)
			a.mu.Unlock()
			r.st.abandoned++
			return nil
		}
		g.Ref, g.State = ref, ipc.StateActive
		r.markRewrite(g)
		r.st.completed++
		defer func() {
			if root := g.root(); g.cg != nil && root != nil {
				a.completeMove(ctx, g, root.Pid())
			}
		}()
	}
	if !g.hasEnded() && g.Boot != "" && a.durable.boot != "" && g.Boot != a.durable.boot {
		// Written before a reboot: every process it names is gone, and a
		// pid (or start time) that matches now is a stranger's.
		g.State, g.Ended = ipc.StateDead, time.Now()
		r.markRewrite(g)
		r.st.otherBoot++
	}
	if g.hasEnded() {
		g.handlesClosed = true
		if g.placed() {
			if cg, err := a.backend.Load(ctx, g.Ref); err == nil {
				g.cg = cg // still to be removed once empty
			}
		}
		r.st.ended++
		return g
	}
	if g.placed() {
		cg, err := a.loadGroup(ctx, g.Ref)
		if rc, ok := a.backend.(cgroup.Recreator); ok && isGone(err) {
			cg, err = r.recreate(ctx, rc, g)
		}
		switch {
		case isGone(err):
			// Everything in it exited, and the cgroup went, while the
			// agent was down: there is nothing left to kill.
			g.State, g.Ended, g.handlesClosed = ipc.StateDead, time.Now(), true
			r.markRewrite(g)
			r.st.gone++
			return g
		case err != nil:
			a.log.Error("cannot load a recorded group's cgroup; the group is left for the next start (its record is kept)",
				"group", g.ID, "ref", g.Ref, "err", err)
			r.st.failed++
			return nil
		}
		g.cg = cg
	}
	if g.State == ipc.StateActive && g.On == ipc.OnExit && g.spawnerProc == nil {
		p, how := a.reacquire(r.handed, spawnerFDName(g.ID), g.Spawner)
		r.st.spawner(how)
		g.spawnerProc = p
		if p != nil {
			r.fromStore[p] = how == foundFDStore
		}
	}
	if g.Kind == ipc.KindWatch {
		r.targets(g)
	}
	return g
}

// targets finds a watch group's targets again; gone ones are dropped.
func (r *restoring) targets(g *group) {
	var ps []*proctree.Process
	var ids []proctree.Identity
	for _, id := range g.Targets {
		p, how := r.a.reacquire(r.handed, targetsFDName(g.ID), id)
		r.st.target(how)
		if p == nil {
			continue
		}
		r.fromStore[p] = how == foundFDStore
		ps, ids = append(ps, p), append(ids, id)
	}
	if len(ids) != len(g.Targets) {
		r.markRewrite(g)
	}
	g.targetProcs, g.Targets = ps, ids
}

func (r *restoring) markRewrite(g *group) {
	if r.rewrite == nil {
		r.rewrite = map[*group]bool{}
	}
	r.rewrite[g] = true
}

// loadGroup loads a group's cgroup, retrying briefly what may be a hiccup
// (a busy D-Bus); a cgroup that does not exist is not retried.
func (a *Agent) loadGroup(ctx context.Context, ref cgroup.Ref) (cgroup.Group, error) {
	var err error
	for try, wait := 0, 100*time.Millisecond; try < 4; try, wait = try+1, 3*wait {
		var cg cgroup.Group
		if cg, err = a.backend.Load(ctx, ref); err == nil || isGone(err) {
			return cg, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil, err
}

// completeMove finishes the move of a registration cut short: the crash
// may have come after the cgroup was made but before every process was in
// it. The root (the spawner; a compat group's child), if it is not inside
// yet, and its descendants that share its cgroup are moved now, then
// children forked meanwhile. Policy was checked on them before the record
// was written; what they forked since belongs to the group, as at
// registration.
func (a *Agent) completeMove(ctx context.Context, g *group, root int) {
	origin, err := a.placeOf(root)
	if err != nil || origin == g.Ref.Path || strings.HasPrefix(origin, g.Ref.Path+"/") {
		return
	}
	pids := []int{root}
	for i := 0; i < len(pids); i++ {
		for _, c := range children(pids[i]) {
			if path, err := a.placeOf(c); err == nil && path == origin {
				pids = append(pids, c)
			}
		}
	}
	for _, pid := range pids {
		if err := g.cg.Attach(ctx, pid); err != nil {
			a.log.Debug("completing a cut-short registration: a process could not be moved (gone?)", "group", g.ID, "pid", pid, "err", err)
		}
	}
	if _, err := a.catchEscapees(ctx, g.cg, origin); err != nil {
		a.log.Warn("completing a cut-short registration: re-checking for forks failed", "group", g.ID, "err", err)
	}
	a.log.Info("completed the move of a registration cut short", "group", g.ID, "moved", len(pids))
}

// recreate makes g's group again around its spawner, found again, for a
// backend that keeps nothing in the kernel. A spawner that exited while no
// agent ran leaves nothing to find (what it started has been reparented):
// the group then counts as gone.
func (r *restoring) recreate(ctx context.Context, rc cgroup.Recreator, g *group) (cgroup.Group, error) {
	a := r.a
	var p *proctree.Process
	how := foundExited
	if g.Origin != ipc.OriginCompat {
		p, how = a.reacquire(r.handed, spawnerFDName(g.ID), g.Spawner)
		r.st.spawner(how)
	} else if len(g.Targets) > 0 { // a compat group's root is its child, its target
		p, how = a.reacquire(r.handed, targetsFDName(g.ID), g.Targets[0])
	}
	if p == nil {
		a.log.Warn("a group's spawner exited while no agent ran; this backend cannot find what it left behind",
			"group", g.ID, "backend", a.backend.Name(), "spawner", how)
		return nil, fmt.Errorf("recreate %s: %w", g.ID, cgroup.ErrNotFound)
	}
	spec := cgroup.Spec{ID: g.ID, Pids: []int{p.Pid()}, Description: describe(g.ID, g.Name, p.Pid(), g.OwnerUID), Stop: g.killOptions()}
	if parent := r.groups[g.Parent]; parent != nil && parent.cg != nil && !parent.hasEnded() {
		spec.Parent = parent.cg
	}
	cg, err := rc.CreateWith(ctx, spec, p)
	if err != nil || g.State != ipc.StateActive || g.On != ipc.OnExit || g.Origin == ipc.OriginCompat {
		p.Close() // the backend holds its own duplicate
	} else {
		g.spawnerProc = p
		r.fromStore[p] = how == foundFDStore
	}
	if err == nil {
		g.Ref = cg.Ref()
		r.markRewrite(g)
		r.st.recreated++
	}
	return cg, err
}
