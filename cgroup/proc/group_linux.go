package proc

import (
	"context"
	"fmt"
	"slices"

	"github.com/orphand/orphand/cgroup"
)

// Group is a set of tracked processes: the pids placed in it and their
// descendants, each held by a pidfd from the moment it was found. All
// methods are safe for concurrent use.
type Group struct {
	b      *Backend
	id     string
	parent *Group

	// Guarded by b.mu.
	children map[*Group]struct{}
	members  map[*member]struct{} // live members, and ghosts (connector)
	kills    []*killState         // kills under way on this group
	removed  bool
}

var (
	_ cgroup.Group  = (*Group)(nil)
	_ cgroup.Placed = (*Group)(nil)
)

// ID is the agent's group id.
func (g *Group) ID() string { return g.id }

// Ref returns the group's id only: a proc group has no cgroup and no unit.
// What re-finds it after a restart is the spawner's identity, which the
// agent keeps in its own record (see the package doc).
func (g *Group) Ref() cgroup.Ref { return cgroup.Ref{ID: g.id} }

// Place returns the ids of the groups g is nested in and its own, as a
// path ("/outer/inner"): see [Backend.PlaceOf].
func (g *Group) Place() string {
	if g.parent == nil {
		return "/" + g.id
	}
	return g.parent.Place() + "/" + g.id
}

// nestedIn reports whether g is nested, at any depth, in outer.
func (g *Group) nestedIn(outer *Group) bool {
	for p := g.parent; p != nil; p = p.parent {
		if p == outer {
			return true
		}
	}
	return false
}

// depth counts the groups g is nested in.
func (g *Group) depth() int {
	d := 0
	for p := g.parent; p != nil; p = p.parent {
		d++
	}
	return d
}

// Attach tracks pid (the whole process) and its descendants in g: the
// untracked ones, and those tracked in a group g is nested in; a pid
// tracked in another group moves to g. Descendants tracked in other groups
// stay there. It fails with an error wrapping os.ErrProcessDone when pid
// is gone or already exited.
func (g *Group) Attach(ctx context.Context, pid int) error {
	b := g.b
	p, err := b.openTarget(pid, agentAncestors())
	if err != nil {
		return fmt.Errorf("proc: attach to %s: %w", g.id, err)
	}
	b.mu.Lock()
	if g.removed || b.closed {
		b.mu.Unlock()
		p.Close()
		return fmt.Errorf("proc: attach to %s: %w", g.id, cgroup.ErrNotFound)
	}
	b.attachLocked(g, p)
	b.mu.Unlock()
	b.claimFromEnclosing(g, []int{pid})
	b.settle([]int{pid})
	return ctx.Err()
}

// Members lists the live tracked processes of g and of the groups nested
// in it, after catching up with forks: with the connector, every event
// queued before the call is handled first; in the fallback, the group is
// walked first.
func (g *Group) Members(ctx context.Context) ([]int, error) {
	if err := g.refresh(ctx); err != nil {
		return nil, err
	}
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if g.removed {
		return nil, fmt.Errorf("proc: members of %s: %w", g.id, cgroup.ErrNotFound)
	}
	live := b.liveLocked(g)
	pids := make([]int, len(live))
	for i, m := range live {
		pids[i] = m.pid
	}
	slices.Sort(pids)
	return pids, nil
}

// Remove forgets g and the groups nested in it; their processes are left
// alone (they are no longer tracked). It is idempotent.
func (g *Group) Remove(context.Context) error {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !g.removed {
		b.removeLocked(g)
	}
	return nil
}

// removeLocked forgets g, nested groups first.
func (b *Backend) removeLocked(g *Group) {
	for c := range g.children {
		b.removeLocked(c)
	}
	for m := range g.members {
		b.forgetLocked(m)
	}
	g.removed = true
	if g.parent != nil {
		delete(g.parent.children, g)
	}
	if b.groups[g.id] == g {
		delete(b.groups, g.id)
	}
}

// refresh catches up with the forks of g's members: with the connector,
// it waits until every event queued so far is handled (and walks the
// group if the kernel does not answer); in the fallback, it walks g and
// its nested groups.
func (g *Group) refresh(ctx context.Context) error {
	b := g.b
	if b.conn != nil {
		err := b.conn.sync(ctx)
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		b.log.Debug("proc connector sync failed; walking the group instead", "group", g.id, "err", err)
	}
	b.settle(b.liveRoots(g.subtree()))
	return ctx.Err()
}

// subtree returns g and the groups nested in it.
func (g *Group) subtree() map[*Group]struct{} {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[*Group]struct{}{}
	var walk func(*Group)
	walk = func(g *Group) {
		out[g] = struct{}{}
		for c := range g.children {
			walk(c)
		}
	}
	walk(g)
	return out
}
