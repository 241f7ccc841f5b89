package policy

import "fmt"

// Limits bound what callers can make the agent hold. A zero field means no
// limit. Per-uid limits do not apply to root; totals apply to everyone.
type Limits struct {
	GroupsPerUID    int // active groups a uid owns
	GroupsTotal     int // active groups altogether
	ConnsPerUID     int // open connections from one uid
	ConnsTotal      int // open connections altogether
	TargetsPerWatch int // targets in one watch group
	TargetsPerUID   int // watch targets held for one uid, all groups together
}

// DefaultLimits are generous for one host yet keep a runaway or hostile
// client from exhausting the agent's memory or file descriptors (each
// spawner and each watch target holds a pidfd).
func DefaultLimits() Limits {
	return Limits{
		GroupsPerUID:    1000,
		GroupsTotal:     50000,
		ConnsPerUID:     1024,
		ConnsTotal:      16384,
		TargetsPerWatch: 1024,
		TargetsPerUID:   10000,
	}
}

// Limit names, as reported in LimitError.Limit and on the wire.
const (
	LimitGroupsPerUID    = "groups_per_uid"
	LimitGroupsTotal     = "groups_total"
	LimitConnsPerUID     = "connections_per_uid"
	LimitConnsTotal      = "connections_total"
	LimitTargetsPerWatch = "targets_per_watch"
	LimitTargetsPerUID   = "targets_per_uid"
)

// LimitError is a request refused because a quota is reached.
type LimitError struct {
	Limit string // one of the Limit… names
	Max   int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("limit %s (%d) reached; release or kill groups you no longer need, or ask the administrator to raise it in the agent's config", e.Limit, e.Max)
}

// Usage is what a uid, and everybody, holds now.
type Usage struct {
	Mine, Total int
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

// AllowGroup decides whether c may own one more active group.
func (l Limits) AllowGroup(c Caller, u Usage) error {
	return check(c, l.GroupsPerUID, l.GroupsTotal, LimitGroupsPerUID, LimitGroupsTotal, u, 1)
}

// AllowConn decides whether c may open one more connection.
func (l Limits) AllowConn(c Caller, u Usage) error {
	return check(c, l.ConnsPerUID, l.ConnsTotal, LimitConnsPerUID, LimitConnsTotal, u, 1)
}

// AllowTargets decides whether c may add adding watch targets to a group
// that holds inGroup already, given the targets c holds in all its groups
// (u.Mine; u.Total is ignored). TargetsPerWatch applies to root too: it
// bounds the work one group makes at kill time.
func (l Limits) AllowTargets(c Caller, inGroup, adding int, u Usage) error {
	if l.TargetsPerWatch > 0 && inGroup+adding > l.TargetsPerWatch {
		return &LimitError{Limit: LimitTargetsPerWatch, Max: l.TargetsPerWatch}
	}
	return check(c, l.TargetsPerUID, 0, LimitTargetsPerUID, "", u, adding)
}
