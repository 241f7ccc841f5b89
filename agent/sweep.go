package agent

import (
	"context"
	"time"
)

// kickSweeper wakes the sweeper without blocking.
func (a *Agent) kickSweeper() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// sweepLoop forgets ended groups once they are older than DeadRetention or
// more than DeadMax, and removes the cgroups of released groups once they
// are empty. It sleeps on a timer only while something is due, so an idle
// agent has no wake-ups.
func (a *Agent) sweepLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		next := a.sweep(ctx)
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-a.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// lingerMax caps the backoff between checks of a released group's cgroup.
const lingerMax = 5 * time.Minute

// sweep does what is due and returns when it is next needed (zero: never,
// until kicked).
func (a *Agent) sweep(ctx context.Context) time.Time {
	now := time.Now()
	var next time.Time
	due := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	a.mu.Lock()
	keep := a.ended[:0]
	for i, g := range a.ended {
		expired := now.Sub(g.Ended) >= a.cfg.DeadRetention || len(a.ended)-i > a.cfg.DeadMax
		if !expired {
			keep = append(keep, a.ended[i:]...)
			due(g.Ended.Add(a.cfg.DeadRetention))
			break
		}
		a.forgetLocked(g)
	}
	clear(a.ended[len(keep):])
	a.ended = keep
	var check []*group
	for g, l := range a.lingering {
		if !now.Before(l.next) {
			check = append(check, g)
		} else {
			due(l.next)
		}
	}
	a.mu.Unlock()

	for _, g := range check {
		if a.tryRemove(ctx, g) {
			a.mu.Lock()
			delete(a.lingering, g)
			switch {
			case a.unrecorded[g.ID] == g:
				delete(a.unrecorded, g.ID)
			case a.groups[g.ID] != g:
				a.queueLocked(g.ID, nil) // forgotten meanwhile: its record can go now
			}
			a.mu.Unlock()
			continue
		}
		a.mu.Lock()
		l := a.lingering[g]
		l.backoff = min(max(2*l.backoff, time.Second), lingerMax)
		l.next = time.Now().Add(l.backoff)
		a.lingering[g] = l
		due(l.next)
		a.mu.Unlock()
	}
	return next
}

// linger records that an ended group's cgroup must still be removed once
// it is empty (a released group's processes live on; a failed removal
// after a kill is retried).
type linger struct {
	next    time.Time
	backoff time.Duration
}

func (a *Agent) lingerLocked(g *group) {
	if g.cg == nil {
		return
	}
	a.lingering[g] = linger{next: time.Now()}
	a.kickSweeper()
}

// tryRemove removes g's cgroup if it is empty, and reports whether it is
// gone. A non-empty group is never removed: for systemd that would stop the
// scope and kill what a release promised to leave alone.
func (a *Agent) tryRemove(ctx context.Context, g *group) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	members, err := g.cg.Members(ctx)
	if isGone(err) {
		return true
	}
	if err != nil || len(members) > 0 {
		return false
	}
	err = g.cg.Remove(ctx)
	if err != nil && !isGone(err) {
		a.log.Debug("removing an ended group's cgroup failed; will retry", "group", g.ID, "err", err)
		return false
	}
	return true
}
