package cgroupfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/orphand/orphand/cgroup"
)

// group is one cgroup directory. It holds no descriptor: every call
// resolves its path beneath the mount again, so 10,000 groups cost no file
// descriptors, and a group removed behind our back is reported, not
// silently recreated.
type group struct {
	b    *Backend
	id   string
	path string // relative to the mount
}

var (
	_ cgroup.Group     = (*group)(nil)
	_ cgroup.DirOpener = (*group)(nil)
)

// Create makes the group's directory (under spec.Parent's when given) and
// moves spec.Pids into it. If a pid cannot be moved, the pids already moved
// go back to the cgroups they came from and the directory is removed.
func (b *Backend) Create(ctx context.Context, spec cgroup.Spec) (cgroup.Group, error) {
	if err := cgroup.ValidateID(spec.ID); err != nil {
		return nil, err
	}
	parent := b.root
	if spec.Parent != nil {
		pg, ok := spec.Parent.(*group)
		if !ok || pg.b != b {
			return nil, fmt.Errorf("cgroupfs: create %s: the parent is not a group of this backend", spec.ID)
		}
		parent = pg.path
	}
	g := &group{b: b, id: spec.ID, path: cgroup.JoinPath(parent, spec.ID)}
	if err := b.fs.Mkdir(g.path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroupfs: create %s: the group id is in use: %w", spec.ID, err)
		}
		return nil, fmt.Errorf("cgroupfs: create %s: %w", spec.ID, err)
	}
	if err := g.attachAll(spec.Pids); err != nil {
		if rerr := b.fs.Remove(ctx, g.path); rerr != nil {
			b.log.Warn("cannot remove a group whose creation failed", "cgroup", g.path, "err", rerr)
		}
		return nil, fmt.Errorf("cgroupfs: create %s: %w", spec.ID, err)
	}
	return g, nil
}

// attachAll moves pids into g, undoing the moves already made if one fails.
func (g *group) attachAll(pids []int) error {
	type moved struct {
		pid  int
		from string
	}
	var done []moved
	for _, pid := range pids {
		from, err := g.b.fs.CgroupOf(pid)
		if err == nil {
			err = g.b.fs.Attach(g.path, pid)
		}
		if err != nil {
			for _, m := range done {
				if uerr := g.b.fs.Attach(m.from, m.pid); uerr != nil && !errors.Is(uerr, os.ErrProcessDone) {
					g.b.log.Warn("cannot move a process back after a failed create", "pid", m.pid, "cgroup", m.from, "err", uerr)
				}
			}
			return err
		}
		done = append(done, moved{pid, from})
	}
	return nil
}

// Load finds a group again from its Ref. The path must lie under the
// backend's root and consist of valid group ids ending in ref.ID.
func (b *Backend) Load(_ context.Context, ref cgroup.Ref) (cgroup.Group, error) {
	if err := cgroup.ValidateID(ref.ID); err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(ref.Path, strings.TrimSuffix(b.root, "/")+"/")
	if !ok {
		return nil, fmt.Errorf("cgroupfs: load %s: %q is not under the root %s: %w", ref.ID, ref.Path, b.root, cgroup.ErrNotFound)
	}
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		if err := cgroup.ValidateID(p); err != nil {
			return nil, fmt.Errorf("cgroupfs: load %s: path %q: %w", ref.ID, ref.Path, err)
		}
	}
	if parts[len(parts)-1] != ref.ID {
		return nil, fmt.Errorf("cgroupfs: load %s: path %q names another group: %w", ref.ID, ref.Path, cgroup.ErrInvalidID)
	}
	if _, err := b.fs.Events(ref.Path); err != nil {
		return nil, fmt.Errorf("cgroupfs: load %s: %w", ref.ID, err)
	}
	return &group{b: b, id: ref.ID, path: ref.Path}, nil
}

// Groups lists every group under the root, nested ones after their
// parents. Directories whose names are not group ids are skipped.
func (b *Backend) Groups(ctx context.Context) ([]cgroup.Ref, error) {
	var refs []cgroup.Ref
	var walk func(dir string) error
	walk = func(dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := b.fs.Children(dir)
		if errors.Is(err, cgroup.ErrNotFound) && dir != b.root {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			if cgroup.ValidateID(n) != nil {
				continue
			}
			p := cgroup.JoinPath(dir, n)
			refs = append(refs, cgroup.Ref{ID: n, Path: p})
			if err := walk(p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(b.root); err != nil {
		return nil, fmt.Errorf("cgroupfs: list groups: %w", err)
	}
	return refs, nil
}

func (g *group) ID() string { return g.id }

func (g *group) Ref() cgroup.Ref { return cgroup.Ref{ID: g.id, Path: g.path} }

// Attach moves pid (all its threads) into the group.
func (g *group) Attach(_ context.Context, pid int) error {
	return g.b.fs.Attach(g.path, pid)
}

// Members lists the pids in the group and in its nested groups.
func (g *group) Members(_ context.Context) ([]int, error) {
	return g.b.fs.Procs(g.path, true)
}

// Kill runs the shared kill pipeline on the group's subtree.
func (g *group) Kill(ctx context.Context, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	return g.b.fs.Kill(ctx, g.path, opts)
}

// Remove deletes the group and its nested groups, deepest first.
func (g *group) Remove(ctx context.Context) error {
	return g.b.fs.Remove(ctx, g.path)
}

// OpenDir opens the group's directory to spawn into it.
func (g *group) OpenDir() (*os.File, error) {
	return g.b.fs.OpenDir(g.path)
}
