package proc

import (
	"context"
	"slices"
	"time"
)

// maxSettlePasses bounds the walks of settle. Each walk only finds
// children forked before their parent was adopted (later forks are seen
// by events, or by the next walk), so a few passes suffice; the bound
// keeps a fork storm from holding the caller forever.
const maxSettlePasses = 64

// settle walks the descendants of roots until a walk adopts nothing new.
func (b *Backend) settle(roots []int) {
	for range maxSettlePasses {
		if b.adoptDescendants(roots) == 0 {
			return
		}
	}
}

// rescanLoop is the fallback's goroutine: it walks the groups of members
// that exited (a child may have been forked meanwhile) and, while groups
// exist, every RescanInterval — or less often when a walk takes long, so
// that walking never costs more than about 5% of a CPU.
func (b *Backend) rescanLoop(ctx context.Context) {
	t := time.NewTimer(b.cfg.RescanInterval)
	defer t.Stop()
	armed := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
			b.rescanExited()
			if !armed && b.hasGroups() {
				t.Reset(b.cfg.RescanInterval)
				armed = true
			}
		case <-t.C:
			start := time.Now()
			b.settle(b.liveRoots(nil))
			armed = b.hasGroups()
			if armed {
				t.Reset(max(b.cfg.RescanInterval, 20*time.Since(start)))
			}
		}
	}
}

// rescanExited forgets members whose exit the watcher reported and walks
// their groups again.
func (b *Backend) rescanExited() {
	ms := b.takeExited()
	if len(ms) == 0 {
		return
	}
	groups := map[*Group]struct{}{}
	b.mu.Lock()
	for _, m := range ms {
		if b.index[m.pid] == m {
			groups[m.g] = struct{}{}
			b.forgetLocked(m)
		}
	}
	b.mu.Unlock()
	if len(groups) == 0 {
		return
	}
	b.settle(b.liveRoots(groups))
}

// liveRoots returns the pids of the live members of groups (every group
// when nil), oldest first, so that a walk from a parent covers its
// children before they come up as roots.
func (b *Backend) liveRoots(groups map[*Group]struct{}) []int {
	b.mu.Lock()
	var live []*member
	add := func(g *Group) {
		if g.removed {
			return
		}
		b.pruneLocked(g)
		for m := range g.members {
			if m.live() {
				live = append(live, m)
			}
		}
	}
	if groups == nil {
		for _, g := range b.groups {
			add(g)
		}
	} else {
		for g := range groups {
			add(g)
		}
	}
	pids := make([]int, len(live))
	slices.SortFunc(live, oldestFirst)
	for i, m := range live {
		pids[i] = m.pid
	}
	b.mu.Unlock()
	return pids
}

func (b *Backend) hasGroups() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.groups) > 0
}
