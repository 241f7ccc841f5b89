package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/proctree"
)

// fakeBackend stands in for a cgroup backend in tests of the agent's logic:
// a "group" is a set of pidfds, killed one by one. Nothing moves between
// cgroups, so it cannot show nesting by cgroup path or inheritance at fork;
// the integration tests use the real cgroupfs backend for those.
type fakeBackend struct {
	mu        sync.Mutex
	groups    map[string]*fakeGroup
	createErr error
	kills     int
}

// newFakeBackend returns a fake whose pidfds are closed when the test ends
// (not at Remove: a kill of an enclosing group may still be waiting on
// them).
func newFakeBackend(t testing.TB) *fakeBackend {
	b := &fakeBackend{groups: map[string]*fakeGroup{}}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, g := range b.groups {
			g.mu.Lock()
			for _, p := range g.procs {
				p.Close()
			}
			g.mu.Unlock()
		}
	})
	return b
}

// The fake keeps the backend contract (cgroup/backend.go), without its
// optional parts.
var (
	_ cgroup.Backend = (*fakeBackend)(nil)
	_ cgroup.Group   = (*fakeGroup)(nil)
)

func (b *fakeBackend) Name() string { return "fake" }
func (b *fakeBackend) Features() cgroup.Features {
	return cgroup.Features{Backend: "fake", Layout: "none", Kill: true}
}

func (b *fakeBackend) Create(ctx context.Context, spec cgroup.Spec) (cgroup.Group, error) {
	if b.createErr != nil {
		return nil, b.createErr
	}
	if err := cgroup.ValidateID(spec.ID); err != nil {
		return nil, err
	}
	g := &fakeGroup{b: b, id: spec.ID, path: "/fake/" + spec.ID, procs: map[int]*proctree.Process{}}
	if spec.Parent != nil {
		p := spec.Parent.(*fakeGroup)
		g.parent, g.path = p, p.path+"/"+spec.ID
		p.mu.Lock()
		p.kids = append(p.kids, g)
		p.mu.Unlock()
	}
	for i, pid := range spec.Pids {
		if err := g.Attach(ctx, pid); err != nil && i == 0 {
			return nil, err
		}
	}
	b.mu.Lock()
	b.groups[spec.ID] = g
	b.mu.Unlock()
	return g, nil
}

func (b *fakeBackend) Load(context.Context, cgroup.Ref) (cgroup.Group, error) {
	return nil, cgroup.ErrNotFound
}
func (b *fakeBackend) Groups(context.Context) ([]cgroup.Ref, error) { return nil, nil }
func (b *fakeBackend) Close() error                                 { return nil }

// live returns the ids of groups not removed.
func (b *fakeBackend) live() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id, g := range b.groups {
		g.mu.Lock()
		if !g.removed {
			ids = append(ids, id)
		}
		g.mu.Unlock()
	}
	return ids
}

type fakeGroup struct {
	b      *fakeBackend
	id     string
	path   string
	parent *fakeGroup

	mu      sync.Mutex
	procs   map[int]*proctree.Process
	kids    []*fakeGroup
	removed bool
}

var errAlreadyMember = errors.New("fake: already a member")

func (g *fakeGroup) ID() string { return g.id }
func (g *fakeGroup) Ref() cgroup.Ref {
	return cgroup.Ref{ID: g.id, Path: g.path}
}

func (g *fakeGroup) Attach(_ context.Context, pid int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return cgroup.ErrNotFound
	}
	if _, ok := g.procs[pid]; ok {
		return errAlreadyMember
	}
	p, err := proctree.Open(pid)
	if err != nil {
		return err
	}
	g.procs[pid] = p
	return nil
}

// all returns the processes of g and its nested groups.
func (g *fakeGroup) all() []*proctree.Process {
	g.mu.Lock()
	if g.removed {
		g.mu.Unlock()
		return nil
	}
	var ps []*proctree.Process
	for _, p := range g.procs {
		ps = append(ps, p)
	}
	kids := slices.Clone(g.kids)
	g.mu.Unlock()
	for _, k := range kids {
		ps = append(ps, k.all()...)
	}
	return ps
}

func (g *fakeGroup) Members(context.Context) ([]int, error) {
	g.mu.Lock()
	removed := g.removed
	g.mu.Unlock()
	if removed {
		return nil, cgroup.ErrNotFound
	}
	var pids []int
	for _, p := range g.all() {
		if !p.Exited() {
			pids = append(pids, p.Pid())
		}
	}
	return pids, nil
}

func (g *fakeGroup) Kill(ctx context.Context, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	start := time.Now()
	g.b.mu.Lock()
	g.b.kills++
	g.b.mu.Unlock()
	res, err := killTargets(ctx, g.all(), opts)
	res.Duration = time.Since(start)
	return res, err
}

func (g *fakeGroup) Remove(context.Context) error {
	for _, p := range g.all() {
		if !p.Exited() {
			return fmt.Errorf("fake: remove %s: %w", g.id, syscall.EBUSY)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return cgroup.ErrNotFound
	}
	g.removed = true
	return nil
}
