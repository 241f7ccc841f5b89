package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// restore takes over the groups of the agent before this one, from the
// records in the state directory and the pidfds systemd kept, before Run
// serves anyone (docs/restart.md has the rules and why):
//
//   - an active group whose spawner is alive is watched again; one whose
//     spawner exited while the agent was down — or whose pid now names
//     another process — is killed at once (its cgroup still holds what the
//     spawner left behind);
//   - an on=disconnect group is killed: its connection ended with the agent;
//   - a group that was being killed is killed again, for what is left of
//     its grace;
//   - a registration cut short is completed if its cgroup exists (the
//     processes were moved into it), and forgotten otherwise;
//   - watch targets are found again the same way; one whose pid was reused
//     is dropped, never signalled;
//   - dead and released groups stay visible for the rest of their retention;
//   - groups under the backend's root that no record names are reported
//     (status) and handled by restoreUnrecorded.
func (a *Agent) restore(ctx context.Context) {
	d := a.durable
	if d == nil {
		return
	}
	start := time.Now()
	r := &restoring{a: a, handed: a.openHanded(d.takeHanded()), fromStore: map[*proctree.Process]bool{}}
	recs := r.decode(d.takeRecords())
	listed, err := a.backend.Groups(ctx)
	if err != nil {
		a.log.Warn("cannot list the backend's groups: registrations cut short are left for the next start, and unrecorded groups go unreported", "err", err)
	}
	r.listed = err == nil
	r.refs = map[string]cgroup.Ref{}
	for _, ref := range listed {
		r.refs[ref.ID] = ref
	}
	r.groups = map[string]*group{}
	for _, rec := range recs { // parents first: a re-created group nests in its parent's
		if g := r.group(ctx, rec); g != nil {
			r.groups[g.ID] = g
		}
	}
	groups := r.groups
	order := linkParentsFirst(groups)

	a.mu.Lock()
	for _, g := range order {
		a.enterLocked(g, r.rewrite[g])
	}
	watch := r.startLocked(order)
	a.mu.Unlock()

	r.syncFDStore(order)
	for _, g := range watch {
		a.watchSpawner(g)
	}
	r.handed.closeUnclaimed()
	r.st.unrecorded = a.restoreUnrecorded(ctx, listed, r.recIDs, groups)
	if len(recs) > 0 || r.st.unrecorded > 0 || len(r.handed.names) > 0 {
		a.log.Info("took over the groups of the previous agent", append(r.st.attrs(), "took", time.Since(start))...)
	}
}

// restoring is one restore's working state.
type restoring struct {
	a         *Agent
	handed    *handedFDs
	refs      map[string]cgroup.Ref // the backend's groups, by id
	listed    bool                  // refs is complete
	groups    map[string]*group     // restored so far, by id
	recIDs    map[string]bool       // every id with a record, usable or not
	rewrite   map[*group]bool       // groups whose record changes
	fromStore map[*proctree.Process]bool
	st        restoreStats
}

// decode reads the records, parents before the groups nested in them, else
// in creation order. A record that does not decode is left on disk (a
// later version may read it) and reported.
func (r *restoring) decode(raw map[string][]byte) []Record {
	r.recIDs = map[string]bool{}
	var recs []Record
	for id, b := range raw {
		r.recIDs[id] = true
		var rec Record
		err := json.Unmarshal(b, &rec)
		if err == nil {
			err = checkRecord(id, rec)
		}
		if err != nil {
			r.a.log.Error("ignoring a group record that cannot be read", "group", id, "err", err)
			r.st.unreadable++
			continue
		}
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(x, y Record) int { return x.Created.Compare(y.Created) })
	byID := map[string]*Record{}
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	depth := map[string]int{}
	for _, rec := range recs {
		d := 0
		for p := byID[rec.Parent]; p != nil && d <= len(recs); p = byID[p.Parent] {
			d++ // bounded: damaged records could hold a cycle
		}
		depth[rec.ID] = d
	}
	slices.SortStableFunc(recs, func(x, y Record) int { return depth[x.ID] - depth[y.ID] })
	return recs
}

// checkRecord refuses a record whose fields could not have been written.
func checkRecord(id string, rec Record) error {
	switch {
	case rec.ID != id:
		return fmt.Errorf("record of %q stored as %q", rec.ID, id)
	case cgroup.ValidateID(rec.ID) != nil:
		return fmt.Errorf("invalid group id %q", rec.ID)
	case rec.Kind != ipc.KindSubtree && rec.Kind != ipc.KindWatch:
		return fmt.Errorf("unknown kind %q", rec.Kind)
	case rec.On != ipc.OnExit && rec.On != ipc.OnDisconnect:
		return fmt.Errorf("unknown trigger %q", rec.On)
	}
	switch rec.State {
	case stateRegistering, ipc.StateActive, ipc.StateKilling, ipc.StateDead, ipc.StateReleased:
		return nil
	}
	return fmt.Errorf("unknown state %q", rec.State)
}

// linkParentsFirst links restored groups to their parents (by record) and
// returns them with every parent before its children. A link that would
// close a cycle (only damaged records could hold one) is not made.
func linkParentsFirst(groups map[string]*group) []*group {
	order := make([]*group, 0, len(groups))
	for _, g := range groups {
		order = append(order, g)
	}
	slices.SortFunc(order, func(x, y *group) int { return x.Created.Compare(y.Created) })
	for _, g := range order {
		p := groups[g.Parent]
		if p == nil {
			continue
		}
		cycle := false
		for x := p; x != nil; x = x.parentGroup {
			cycle = cycle || x == g
		}
		if !cycle {
			g.parentGroup = p
			p.children[g.ID] = g
		}
	}
	depth := func(g *group) int {
		d := 0
		for x := g.parentGroup; x != nil; x = x.parentGroup {
			d++
		}
		return d
	}
	slices.SortStableFunc(order, func(x, y *group) int { return depth(x) - depth(y) })
	return order
}

// enterLocked puts a restored group in the registry, as transitionLocked
// would have when it reached its state.
func (a *Agent) enterLocked(g *group, rewrite bool) {
	a.groups[g.ID] = g
	a.metrics.stateChanged("", g.State)
	if g.hasEnded() {
		a.ended = append(a.ended, g)
		slices.SortStableFunc(a.ended, func(x, y *group) int { return x.Ended.Compare(y.Ended) })
		if g.cg != nil {
			a.lingerLocked(g)
		}
		a.kickSweeper()
	} else {
		if g.cg != nil {
			a.byPath[placeKey(g)] = g
		}
		a.live.add(g, 1)
	}
	if rewrite {
		a.recordLocked(g)
	}
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
