package policy

import (
	"fmt"

	"github.com/orphand/orphand/ipc"
)

// Limits bound what callers can make the agent hold. A zero field means no
// limit. Per-uid limits do not apply to root; totals apply to everyone,
// except that the last ConnsRootReserve connections of ConnsTotal are
// root's alone.
type Limits struct {
	GroupsPerUID     int // active groups a uid owns
	GroupsTotal      int // active groups altogether
	ConnsPerUID      int // open connections from one uid
	ConnsTotal       int // open connections altogether
	ConnsRootReserve int // of ConnsTotal, kept for root: an admin can always connect
	TargetsPerWatch  int // targets in one watch group
	TargetsPerUID    int // watch targets held for one uid, all groups together
	TargetsTotal     int // watch targets held altogether
}

// DefaultLimits are generous for one host yet keep a runaway or hostile
// client from exhausting the agent's memory or file descriptors (each
// group, watch target and connection holds one or two). The totals need
// about 180,000 descriptors (see [Limits.FilesNeeded]): systemd's default
// hard limit for services (524288) covers them, and where the limit is
// lower the agent lowers the totals to fit ([Limits.FitFiles]).
func DefaultLimits() Limits {
	return Limits{
		GroupsPerUID:     1000,
		GroupsTotal:      50000,
		ConnsPerUID:      1024,
		ConnsTotal:       16384,
		ConnsRootReserve: 64,
		TargetsPerWatch:  1024,
		TargetsPerUID:    10000,
		TargetsTotal:     100000,
	}
}

// LimitError is a request refused because a quota is reached.
type LimitError struct {
	Limit string // the limit reached, named as on the wire: ipc.LimitGroupsPerUID, …
	Max   int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("limit %s (%d) reached; release or kill groups you no longer need, or ask the administrator to raise it in the agent's config", e.Limit, e.Max)
}

// Usage is what a uid, and everybody, holds now.
type Usage struct {
	Mine, Total int
	// NotRoot is what callers other than root hold, of Total: the root
	// reserve is counted against it (connections only).
	NotRoot int
}

func check(c Caller, perUID, total int, perName, totalName string, u Usage, adding int) error {
	if total > 0 && u.Total+adding > total {
		return &LimitError{Limit: totalName, Max: total}
	}
	if !c.IsRoot() && perUID > 0 && u.Mine+adding > perUID {
		return &LimitError{Limit: perName, Max: perUID}
	}
	return nil
}

// Validate reports limits that contradict each other.
func (l Limits) Validate() error {
	for name, v := range map[string]int{
		ipc.LimitGroupsPerUID: l.GroupsPerUID, ipc.LimitGroupsTotal: l.GroupsTotal,
		ipc.LimitConnsPerUID: l.ConnsPerUID, ipc.LimitConnsTotal: l.ConnsTotal, "connections_root_reserve": l.ConnsRootReserve,
		ipc.LimitTargetsPerWatch: l.TargetsPerWatch, ipc.LimitTargetsPerUID: l.TargetsPerUID, ipc.LimitTargetsTotal: l.TargetsTotal,
	} {
		if v < 0 {
			return fmt.Errorf("limit %s = %d must not be negative (0 means unlimited)", name, v)
		}
	}
	if l.ConnsTotal > 0 && l.ConnsRootReserve >= l.ConnsTotal {
		return fmt.Errorf("connections_root_reserve (%d) must be below connections_total (%d), or no other user could connect",
			l.ConnsRootReserve, l.ConnsTotal)
	}
	return nil
}

// AllowGroup decides whether c may own one more active group.
func (l Limits) AllowGroup(c Caller, u Usage) error {
	return check(c, l.GroupsPerUID, l.GroupsTotal, ipc.LimitGroupsPerUID, ipc.LimitGroupsTotal, u, 1)
}

// AllowConn decides whether c may open one more connection. Users other
// than root together hold at most ConnsTotal - ConnsRootReserve
// (u.NotRoot), so that however many of them flood the agent, an admin who
// comes to clean up can still connect; everybody together, root included,
// at most ConnsTotal (u.Total).
func (l Limits) AllowConn(c Caller, u Usage) error {
	if l.ConnsTotal > 0 {
		if u.Total+1 > l.ConnsTotal || !c.IsRoot() && u.NotRoot+1 > max(l.ConnsTotal-l.ConnsRootReserve, 1) {
			return &LimitError{Limit: ipc.LimitConnsTotal, Max: l.ConnsTotal}
		}
	}
	return check(c, l.ConnsPerUID, 0, ipc.LimitConnsPerUID, "", u, 1)
}

// AllowTargets decides whether c may add adding watch targets to a group
// that holds inGroup already, given the targets the group's owner holds in
// all its groups (u.Mine) and everybody holds (u.Total). TargetsPerWatch
// applies to root too: it bounds the work one group makes at kill time.
func (l Limits) AllowTargets(c Caller, inGroup, adding int, u Usage) error {
	if l.TargetsPerWatch > 0 && inGroup+adding > l.TargetsPerWatch {
		return &LimitError{Limit: ipc.LimitTargetsPerWatch, Max: l.TargetsPerWatch}
	}
	return check(c, l.TargetsPerUID, l.TargetsTotal, ipc.LimitTargetsPerUID, ipc.LimitTargetsTotal, u, adding)
}
