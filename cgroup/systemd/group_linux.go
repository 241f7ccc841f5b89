package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"

	sdbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/orphand/orphand/cgroup"
)

// group is one scope, or a cgroup nested in one (see nested_linux.go). A
// scope's cgroup path is what systemd reported when the scope started; it
// does not change while the scope lives.
type group struct {
	b    *Backend
	id   string
	unit string // the group's scope; for a nested group, its outermost group's
	sub  string // "" for a scope; for a nested group its cgroup below the scope's ("/a/b")
	path string
}

var (
	_ cgroup.Group     = (*group)(nil)
	_ cgroup.DirOpener = (*group)(nil)
	_ cgroup.Collected = (*group)(nil)
)

// CollectedWhenEmpty is true: systemd removes a scope's cgroup, nested
// groups' included, the moment the scope is empty.
func (g *group) CollectedWhenEmpty() bool { return true }

func (g *group) ID() string { return g.id }

func (g *group) Ref() cgroup.Ref { return cgroup.Ref{ID: g.id, Path: g.path, Unit: g.unit} }

// Attach moves pid into the group's cgroup with AttachProcessesToUnit, into
// the scope or, for a nested group, into its cgroup below the scope's
// (systemd allows both for delegated units only: the scope has
// Delegate=yes). systemd, unlike a write to cgroup.procs, can also move a
// process from a cgroup the agent may not write, such as another user's
// session scope.
func (g *group) Attach(ctx context.Context, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("systemd: attach pid %d: invalid pid", pid)
	}
	err := g.b.call(ctx, func() error {
		return g.b.conn.AttachProcessesToUnit(ctx, g.unit, g.sub, []uint32{uint32(pid)})
	})
	if err != nil {
		return fmt.Errorf("systemd: attach pid %d to %s: %w", pid, g.unit, dbusErr(err))
	}
	return nil
}

// Members lists the pids in the scope's cgroup.
func (g *group) Members(_ context.Context) ([]int, error) {
	return g.b.fs.Procs(g.path, true)
}

// Kill runs the shared kill pipeline on the group's cgroup, nested groups
// included. A cgroup that is gone (systemd removes an emptied scope's
// cgroup at once, with everything nested in it) is empty: that is success.
func (g *group) Kill(ctx context.Context, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	res, err := g.b.fs.Kill(ctx, g.path, opts)
	if errors.Is(err, cgroup.ErrNotFound) {
		return res, nil
	}
	return res, err
}

// Remove stops the scope (killing what is left in it the way Spec.Stop
// said) and waits for the stop job; a nested group's cgroup is removed
// instead. A scope or cgroup already gone is fine.
func (g *group) Remove(ctx context.Context) error {
	if g.sub != "" {
		if err := g.b.fs.Remove(ctx, g.path); err != nil {
			return fmt.Errorf("systemd: remove %s in %s: %w", g.id, g.unit, err)
		}
		return nil
	}
	if err := g.b.stopUnit(ctx, g.unit); err != nil {
		return fmt.Errorf("systemd: remove %s: %w", g.unit, err)
	}
	return nil
}

// OpenDir opens the scope's cgroup directory to spawn into it.
func (g *group) OpenDir() (*os.File, error) { return g.b.fs.OpenDir(g.path) }

// Load finds a running orphand scope again, or a group nested in one. A
// scope's cgroup path comes from systemd, not from ref; a nested group's
// must lie inside its scope's.
func (b *Backend) Load(ctx context.Context, ref cgroup.Ref) (cgroup.Group, error) {
	if err := cgroup.ValidateID(ref.ID); err != nil {
		return nil, err
	}
	unit := unitName(ref.ID)
	if ref.Unit != "" && ref.Unit != unit && ref.Path != "" && path.Base(ref.Path) == ref.ID {
		return b.loadNested(ctx, ref)
	}
	if ref.Unit != "" && ref.Unit != unit {
		return nil, fmt.Errorf("systemd: load %s: unit %q is not the group's scope: %w", ref.ID, ref.Unit, cgroup.ErrInvalidID)
	}
	path, err := b.controlGroup(ctx, unit)
	if err != nil {
		return nil, fmt.Errorf("systemd: load %s: %w", unit, err)
	}
	return &group{b: b, id: ref.ID, unit: unit, path: path}, nil
}

// Groups lists the orphand scopes systemd has loaded and running, each
// followed by the groups nested in it.
func (b *Backend) Groups(ctx context.Context) ([]cgroup.Ref, error) {
	var units []sdbus.UnitStatus
	err := b.call(ctx, func() (err error) {
		units, err = b.conn.ListUnitsByPatternsContext(ctx, nil, []string{"orphand-*.scope"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("systemd: list scopes: %w", err)
	}
	var refs []cgroup.Ref
	for _, u := range units {
		id := idOf(u.Name)
		if cgroup.ValidateID(id) != nil {
			continue
		}
		path, err := b.controlGroup(ctx, u.Name)
		if err != nil {
			continue // ended meanwhile, or not running
		}
		refs = append(refs, cgroup.Ref{ID: id, Path: path, Unit: u.Name})
		nested, err := b.nestedRefs(ctx, u.Name, path)
		if err != nil {
			return nil, fmt.Errorf("systemd: list the groups nested in %s: %w", u.Name, err)
		}
		refs = append(refs, nested...)
	}
	return refs, nil
}
