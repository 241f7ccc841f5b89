package agent

import (
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
		case g.hasEnded():
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
		case g.spawnerProc == nil:
			plans[g] = killPlan{reasonSpawnerExited, g.killOptions()}
			r.st.killed++
		}
	}
	var starts []func()
	prepared := map[*group]bool{}
	for _, g := range order {
		if g.hasEnded() {
			continue
		}
		p, own := plans[g]
		if !own && (g.parentGroup == nil || !prepared[g.parentGroup]) {
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
		if g.State == ipc.StateActive && g.On == ipc.OnExit && g.spawnerProc != nil {
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
		if g.hasEnded() {
			continue
		}
		if g.spawnerProc != nil && g.State == ipc.StateActive {
			name := spawnerFDName(g.ID)
			if r.fromStore[g.spawnerProc] && r.handed.clean(name) {
				keep[name] = true
			} else {
				puts = append(puts, put{name, g})
			}
		}
		if g.Kind == ipc.KindWatch && len(g.targetProcs) > 0 {
			name := targetsFDName(g.ID)
			all := r.handed.clean(name)
			for _, t := range g.targetProcs {
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
			a.storeFDs(p.name, p.g.spawnerProc)
		} else {
			a.storeFDs(p.name, p.g.targetProcs...)
		}
	}
}

// killPlan is why and how a restored group is killed.
type killPlan struct {
	reason string
	opts   cgroup.KillOptions
}
