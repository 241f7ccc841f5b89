package agent

import (
	"strings"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// transitionLocked is the one place a group changes state: the registry's
// counters, the retention list, the event stream and the group's record on
// disk (queued here, written by persistLoop) follow from here. restore
// rebuilds the registry's part for groups taken over after a restart.
//
// Allowed: "" → active (registered), active → killing, killing → dead,
// active → released.
func (a *Agent) transitionLocked(g *group, to string, ev ipc.Event) {
	from := g.State
	g.State = to
	a.metrics.stateChanged(from, to)
	now := time.Now()
	switch to {
	case ipc.StateActive:
		a.groups[g.ID] = g
		if g.cg != nil {
			a.byPath[placeKey(g)] = g
		}
		a.live.add(g, 1)
	case ipc.StateDead, ipc.StateReleased:
		g.Ended = now
		if g.cg != nil && a.byPath[placeKey(g)] == g {
			delete(a.byPath, placeKey(g))
		}
		if from == ipc.StateActive || from == ipc.StateKilling {
			a.live.add(g, -1)
		}
		a.ended = append(a.ended, g)
		a.kickSweeper()
	}
	a.recordLocked(g)
	ev.Time = now
	a.publishLocked(g, ev)
	a.log.Debug("group state", append(g.logAttrs(ev.Event), "from", from, "to", to)...)
}

// lookupLocked finds a group by id for caller c, who must be allowed to act
// on it with verb.
func (a *Agent) lookupLocked(c policy.Caller, verb, id string) (*group, error) {
	if id == "" {
		return nil, reqErr(ipc.CodeBadRequest, `%s needs a "group" id`, verb)
	}
	g := a.groups[id]
	if g == nil {
		return nil, reqErr(ipc.CodeNotFound, "no group %.64q (ended groups are forgotten after a while; see list)", id)
	}
	if err := policy.MayControl(c, verb, id, g.OwnerUID); err != nil {
		return nil, err
	}
	return g, nil
}

// enclosingLocked returns the not-ended subtree group whose cgroup holds
// path (the deepest, when groups nest), or nil.
func (a *Agent) enclosingLocked(path string) *group {
	for p := path; p != "" && p != "/"; {
		if g := a.byPath[p]; g != nil {
			return g
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return nil
}

// forgetLocked drops an ended group from the registry (list and show no
// longer see it), and its record, unless its cgroup is still to be removed:
// a restarted agent must know that cgroup is not an unrecorded one.
func (a *Agent) forgetLocked(g *group) {
	if a.groups[g.ID] == g {
		delete(a.groups, g.ID)
		a.metrics.stateChanged(g.State, "")
	}
	if a.compat != nil && g.Origin == ipc.OriginCompat {
		a.compat.pairs.forgetLocked(g)
	}
	if _, lingers := a.lingering[g]; !lingers {
		a.queueLocked(g.ID, nil)
	}
	if g.parentGroup != nil {
		delete(g.parentGroup.children, g.ID)
		g.parentGroup = nil
	}
	for _, c := range g.children {
		c.parentGroup = nil
	}
	g.children = nil
}

// liveCounts counts groups that are not ended, and the watch targets they
// hold, for the quotas. Guarded by Agent.mu.
type liveCounts struct {
	groups       int
	groupsByUID  map[uint32]int
	targetsByUID map[uint32]int
	pendingByUID map[uint32]int // registrations between quota check and insert
	pending      int
	// Watch targets of those registrations, so that concurrent requests of
	// one uid cannot all pass the check against the same count.
	pendingTargetsByUID map[uint32]int
	pendingTargets      int
}

func (l *liveCounts) add(g *group, d int) {
	if l.groupsByUID == nil {
		l.groupsByUID, l.targetsByUID, l.pendingByUID = map[uint32]int{}, map[uint32]int{}, map[uint32]int{}
	}
	l.groups += d
	l.groupsByUID[g.OwnerUID] += d
	l.targetsByUID[g.OwnerUID] += d * len(g.targetProcs)
	if l.groupsByUID[g.OwnerUID] <= 0 {
		delete(l.groupsByUID, g.OwnerUID)
	}
	if l.targetsByUID[g.OwnerUID] <= 0 {
		delete(l.targetsByUID, g.OwnerUID)
	}
}

// reserveGroupLocked checks the group quotas for c and reserves a place
// until release is called (the group is then either inserted or not).
func (a *Agent) reserveGroupLocked(c policy.Caller, targets int) (release func(), err error) {
	l := &a.live
	if l.pendingByUID == nil {
		l.groupsByUID, l.targetsByUID, l.pendingByUID = map[uint32]int{}, map[uint32]int{}, map[uint32]int{}
	}
	if l.pendingTargetsByUID == nil {
		l.pendingTargetsByUID = map[uint32]int{}
	}
	u := policy.Usage{Mine: l.groupsByUID[c.UID] + l.pendingByUID[c.UID], Total: l.groups + l.pending}
	if err := a.cfg.Limits.AllowGroup(c, u); err != nil {
		return nil, err
	}
	if targets > 0 {
		if err := a.cfg.Limits.AllowTargets(c, 0, targets, l.targetUsageLocked(c.UID)); err != nil {
			return nil, err
		}
	}
	l.pending++
	l.pendingByUID[c.UID]++
	l.pendingTargets += targets
	l.pendingTargetsByUID[c.UID] += targets
	return func() {
		a.mu.Lock()
		l.pending--
		if l.pendingByUID[c.UID]--; l.pendingByUID[c.UID] <= 0 {
			delete(l.pendingByUID, c.UID)
		}
		l.pendingTargets -= targets
		if l.pendingTargetsByUID[c.UID] -= targets; l.pendingTargetsByUID[c.UID] <= 0 {
			delete(l.pendingTargetsByUID, c.UID)
		}
		a.mu.Unlock()
	}, nil
}

// targetUsageLocked is what the quotas on watch targets compare with: the
// targets uid's groups hold, and all groups together, reservations of
// registrations in flight included.
func (l *liveCounts) targetUsageLocked(uid uint32) policy.Usage {
	u := policy.Usage{Mine: l.targetsByUID[uid] + l.pendingTargetsByUID[uid], Total: l.pendingTargets}
	for _, n := range l.targetsByUID {
		u.Total += n
	}
	return u
}
