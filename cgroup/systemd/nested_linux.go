package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/orphand/orphand/cgroup"
)

// A group nested in another one is a cgroup inside the outer group's scope,
// not a scope of its own. The scope is delegated (Delegate=yes), so the
// subtree below its cgroup is the agent's to manage, and systemd counts the
// scope as running while anything in that subtree lives. A separate scope
// bound to the outer one could not work: when the outer group's only
// process (its spawner, exec'ing `orphanctl run` again) moved into the
// nested scope, the outer scope was empty, systemd ended it, and the stop
// propagated to the nested scope and killed the spawner it had just taken.
//
// So killing the outer group's cgroup kills every group nested in it, as in
// the cgroupfs backend; when systemd stops the outer scope (the unit it is
// bound to stopped), the nested groups go with it, with the outer scope's
// KillSignal= and TimeoutStopSec=.

// createNested makes the group's cgroup inside its parent's and moves
// spec.Pids into it. If a pid cannot be moved, the pids already moved go
// back to the cgroups they came from and the cgroup is removed.
func (b *Backend) createNested(ctx context.Context, spec cgroup.Spec, parent *group) (cgroup.Group, error) {
	g := &group{
		b:    b,
		id:   spec.ID,
		unit: parent.unit,
		sub:  parent.sub + "/" + spec.ID,
		path: cgroup.JoinPath(parent.path, spec.ID),
	}
	if err := b.fs.Mkdir(g.path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("systemd: create %s in %s: the group id is in use: %w", spec.ID, parent.unit, err)
		}
		return nil, fmt.Errorf("systemd: create %s in %s: %w", spec.ID, parent.unit, err)
	}
	if err := g.attachAll(ctx, spec.Pids); err != nil {
		if rerr := b.fs.Remove(context.WithoutCancel(ctx), g.path); rerr != nil {
			b.log.Warn("cannot remove a nested group whose creation failed", "cgroup", g.path, "err", rerr)
		}
		return nil, fmt.Errorf("systemd: create %s in %s: %w", spec.ID, parent.unit, err)
	}
	return g, nil
}

// attachAll moves pids into the nested group g, undoing the moves already
// made if one fails.
func (g *group) attachAll(ctx context.Context, pids []int) error {
	type moved struct {
		pid  int
		from string
	}
	var done []moved
	for _, pid := range pids {
		from, err := g.b.fs.CgroupOf(pid)
		if err == nil {
			err = g.Attach(ctx, pid)
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

// loadNested finds a nested group again from its Ref: ref.Path must lie in
// the cgroup of the scope ref.Unit, as systemd reports it now, and name
// valid group ids below it, ending in ref.ID.
func (b *Backend) loadNested(ctx context.Context, ref cgroup.Ref) (cgroup.Group, error) {
	if idOf(ref.Unit) == "" {
		return nil, fmt.Errorf("systemd: load %s: unit %q is not an orphand scope: %w", ref.ID, ref.Unit, cgroup.ErrInvalidID)
	}
	scope, err := b.controlGroup(ctx, ref.Unit)
	if err != nil {
		return nil, fmt.Errorf("systemd: load %s in %s: %w", ref.ID, ref.Unit, err)
	}
	sub, ok := strings.CutPrefix(ref.Path, strings.TrimSuffix(scope, "/")+"/")
	if !ok {
		return nil, fmt.Errorf("systemd: load %s: %q is not inside %s's cgroup %s: %w", ref.ID, ref.Path, ref.Unit, scope, cgroup.ErrNotFound)
	}
	for _, p := range strings.Split(sub, "/") {
		if err := cgroup.ValidateID(p); err != nil {
			return nil, fmt.Errorf("systemd: load %s: path %q: %w", ref.ID, ref.Path, err)
		}
	}
	if path.Base(sub) != ref.ID {
		return nil, fmt.Errorf("systemd: load %s: path %q names another group: %w", ref.ID, ref.Path, cgroup.ErrInvalidID)
	}
	if _, err := b.fs.Events(ref.Path); err != nil {
		return nil, fmt.Errorf("systemd: load %s: %w", ref.ID, err)
	}
	return &group{b: b, id: ref.ID, unit: ref.Unit, sub: "/" + sub, path: ref.Path}, nil
}

// nestedRefs lists the groups nested in the scope unit, whose cgroup is
// path, parents before the groups nested in them. Directories whose names
// are not group ids are skipped; a cgroup removed meanwhile is no error.
func (b *Backend) nestedRefs(ctx context.Context, unit, path string) ([]cgroup.Ref, error) {
	var refs []cgroup.Ref
	var walk func(dir string) error
	walk = func(dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := b.fs.Children(dir)
		if errors.Is(err, cgroup.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			if cgroup.ValidateID(n) != nil {
				continue
			}
			p := cgroup.JoinPath(dir, n)
			refs = append(refs, cgroup.Ref{ID: n, Path: p, Unit: unit})
			if err := walk(p); err != nil {
				return err
			}
		}
		return nil
	}
	return refs, walk(path)
}
