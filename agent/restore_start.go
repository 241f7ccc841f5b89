package agent

import (
	"context"
	"strings"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
)

// startLocked decides each restored group's fate and starts the kills,
// parents first, as startKillLocked would (all prepared, then started), and
// returns the groups to watch again.
func (r *restoring) startLocked(order []*group) (watch []*group) {
	a := r.a
	plans := map[*group]killPlan{}
	for _, g := range order {
		switch {
		case g.ended():
		case g.State == ipc.StateKilling:
			o := g.killOptions()
			o.Grace = 0
			if left := time.Until(g.KillBy); !g.KillBy.IsZero() && left > 0 {
				o.Grace = left
			}
			why := g.KillReason
			if why == "" {
				why = reasonRequest
			}
			plans[g] = killPlan{why, o}
			r.st.resumed++
		case g.On == ipc.OnDisconnect:
			plans[g] = killPlan{reasonDisconnect, g.killOptions()}
			r.st.disconnected++
		case g.spawner == nil:
			plans[g] = killPlan{reasonSpawnerExited, g.killOptions()}
			r.st.killed++
		}
	}
	var starts []func()
	prepared := map[*group]bool{}
	for _, g := range order {
		if g.ended() {
			continue
		}
		p, own := plans[g]
		if !own && (g.parent == nil || !prepared[g.parent]) {
			continue
		}
		if !own {
			p = killPlan{reasonParent, g.killOptions()}
		}
		starts = append(starts, a.prepareKillLocked(g, p.reason, p.opts))
		prepared[g] = true
	}
	for _, start := range starts {
		start()
	}
	for _, g := range order {
		if g.State == ipc.StateActive && g.On == ipc.OnExit && g.spawner != nil {
			watch = append(watch, g)
			r.st.watched++
		}
	}
	return watch
}

// syncFDStore makes the fd store hold what the restored groups need: names
// of groups that ended, or whose pidfds did not all come back, are dropped;
// then the live spawners and targets that did not come back from the store
// are stored. Removals go first (systemd reads the datagrams in order).
func (r *restoring) syncFDStore(order []*group) {
	a := r.a
	if a.durable.fds == nil {
		return
	}
	a.mu.Lock()
	keep := map[string]bool{}
	type put struct {
		name string
		g    *group
	}
	var puts []put
	for _, g := range order {
		if g.ended() {
			continue
		}
		if g.spawner != nil && g.State == ipc.StateActive {
			name := spawnerFDName(g.ID)
			if r.fromStore[g.spawner] && r.handed.clean(name) {
				keep[name] = true
			} else {
				puts = append(puts, put{name, g})
			}
		}
		if g.Kind == ipc.KindWatch && len(g.targets) > 0 {
			name := targetsFDName(g.ID)
			all := r.handed.clean(name)
			for _, t := range g.targets {
				all = all && r.fromStore[t]
			}
			if all {
				keep[name] = true
			} else {
				puts = append(puts, put{name, g})
			}
		}
	}
	a.mu.Unlock()
	for name := range r.handed.names {
		if !keep[name] {
			a.unstoreFDs(name)
		}
	}
	for _, p := range puts {
		// The handles stay open: watchSpawner closes the spawner's only
		// after this, and targets live until the group ends.
		if strings.HasSuffix(p.name, ".spawner") {
			a.storeFDs(p.name, p.g.spawner)
		} else {
			a.storeFDs(p.name, p.g.targets...)
		}
	}
}

// restoreUnrecorded handles the groups under the backend's root that no
// record names (the state directory was lost or replaced, or belonged to
// another agent): an empty one is removed; a populated one is left alone —
// the agent does not know its spawner, so it has no trigger to act on and
// must not guess — reported in status, and removed once empty. Groups
// nested in a recorded group are its own business. It returns how many it
// reports.
func (a *Agent) restoreUnrecorded(ctx context.Context, listed []cgroup.Ref, recIDs map[string]bool, known map[string]*group) int {
	var roots []string
	for _, g := range known {
		if g.Ref.Path != "" {
			roots = append(roots, g.Ref.Path)
		}
	}
	under := func(path string) bool {
		for _, r := range roots {
			if path != "" && strings.HasPrefix(path, r+"/") {
				return true
			}
		}
		return false
	}
	n := 0
	for _, ref := range listed { // parents before nested groups
		if recIDs[ref.ID] || under(ref.Path) {
			continue
		}
		roots = append(roots, ref.Path)
		cg, err := a.backend.Load(ctx, ref)
		if err != nil {
			continue // gone meanwhile
		}
		members, err := cg.Members(ctx)
		if err == nil && len(members) == 0 {
			if err := cg.Remove(ctx); err == nil || isGone(err) {
				a.log.Info("removed an empty group that no record names", "group", ref.ID, "cgroup", ref.Path, "unit", ref.Unit)
				continue
			}
		}
		a.log.Warn("a group no record names holds processes: left alone (nothing watches it), reported in status, removed once empty",
			"group", ref.ID, "cgroup", ref.Path, "unit", ref.Unit, "members", len(members))
		g := &group{Record: Record{ID: ref.ID, Ref: ref, Backend: a.backend.Name(), State: "unrecorded"}, cg: cg}
		a.mu.Lock()
		a.unrecorded[ref.ID] = g
		a.lingering[g] = linger{next: time.Now().Add(time.Second)}
		a.kickSweeper()
		a.mu.Unlock()
		n++
	}
	return n
}

// unrecordedLocked lists the unrecorded groups for status: the cgroup
// path, or the unit where there is no path.
func (a *Agent) unrecordedLocked() []string {
	var out []string
	for _, g := range a.unrecorded {
		if g.Ref.Path != "" {
			out = append(out, g.Ref.Path)
		} else {
			out = append(out, g.Ref.Unit)
		}
	}
	return out
}

// restoreStats counts what restore did, for its log line.
type restoreStats struct {
	watched, killed, resumed, disconnected int
	completed, abandoned, gone, ended      int
	failed, unreadable, unrecorded         int
	recreated, otherBoot                   int

	spawnersFDStore, spawnersIdentity, spawnersExited, spawnersReused int
	targetsFDStore, targetsIdentity, targetsExited, targetsReused     int
}

func (s *restoreStats) spawner(how string) {
	s.spawnersFDStore, s.spawnersIdentity, s.spawnersExited, s.spawnersReused = count(how,
		s.spawnersFDStore, s.spawnersIdentity, s.spawnersExited, s.spawnersReused)
}

func (s *restoreStats) target(how string) {
	s.targetsFDStore, s.targetsIdentity, s.targetsExited, s.targetsReused = count(how,
		s.targetsFDStore, s.targetsIdentity, s.targetsExited, s.targetsReused)
}

func count(how string, fdstore, identity, exited, reused int) (int, int, int, int) {
	switch how {
	case foundFDStore:
		fdstore++
	case foundIdentity:
		identity++
	case foundExited:
		exited++
	case foundReused:
		reused++
	}
	return fdstore, identity, exited, reused
}

// attrs are the log attributes; the e2e tests read some of them.
func (s *restoreStats) attrs() []any {
	return []any{
		"watched", s.watched, "killed_spawner_gone", s.killed, "kills_resumed", s.resumed,
		"killed_disconnect", s.disconnected, "registrations_completed", s.completed,
		"registrations_abandoned", s.abandoned, "emptied_while_down", s.gone, "ended", s.ended,
		"load_failed", s.failed, "unreadable", s.unreadable, "unrecorded", s.unrecorded, "recreated", s.recreated,
		"before_reboot", s.otherBoot,
		"spawners_from_fdstore", s.spawnersFDStore, "spawners_by_identity", s.spawnersIdentity,
		"spawners_exited", s.spawnersExited, "spawners_pid_reused", s.spawnersReused,
		"targets_from_fdstore", s.targetsFDStore, "targets_by_identity", s.targetsIdentity,
		"targets_exited", s.targetsExited, "targets_pid_reused", s.targetsReused,
	}
}
