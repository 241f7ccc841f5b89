package agent

import (
	"context"
	"strings"
	"time"

	"github.com/orphand/orphand/cgroup"
)

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
