package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"

	sdbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/orphand/orphand/cgroup"
)

// group is one scope. Its cgroup path is what systemd reported when the
// scope started; it does not change while the scope lives.
type group struct {
	b    *Backend
	id   string
	unit string
	path string
}

var (
	_ cgroup.Group     = (*group)(nil)
	_ cgroup.DirOpener = (*group)(nil)
)

func (g *group) ID() string { return g.id }

func (g *group) Ref() cgroup.Ref { return cgroup.Ref{ID: g.id, Path: g.path, Unit: g.unit} }

// Attach moves pid into the scope with AttachProcessesToUnit (systemd
// allows that for delegated units only: the scope has Delegate=yes).
func (g *group) Attach(ctx context.Context, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("systemd: attach pid %d: invalid pid", pid)
	}
	err := g.b.call(ctx, func() error {
		return g.b.conn.AttachProcessesToUnit(ctx, g.unit, "", []uint32{uint32(pid)})
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

// Kill runs the shared kill pipeline on the scope's cgroup. Nested groups
// are separate scopes: the agent kills them itself.
// A scope whose cgroup is gone (systemd removes an emptied scope's cgroup
// at once) is empty: that is success.
func (g *group) Kill(ctx context.Context, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	res, err := g.b.fs.Kill(ctx, g.path, opts)
	if errors.Is(err, cgroup.ErrNotFound) {
		return res, nil
	}
	return res, err
}

// Remove stops the scope (killing what is left in it the way Spec.Stop
// said) and waits for the stop job. A scope already gone is fine.
func (g *group) Remove(ctx context.Context) error {
	if err := g.b.stopUnit(ctx, g.unit); err != nil {
		return fmt.Errorf("systemd: remove %s: %w", g.unit, err)
	}
	return nil
}

// OpenDir opens the scope's cgroup directory to spawn into it.
func (g *group) OpenDir() (*os.File, error) { return g.b.fs.OpenDir(g.path) }

// Load finds a running orphand scope again. The cgroup path comes from
// systemd, not from ref.
func (b *Backend) Load(ctx context.Context, ref cgroup.Ref) (cgroup.Group, error) {
	if err := cgroup.ValidateID(ref.ID); err != nil {
		return nil, err
	}
	unit := unitName(ref.ID)
	if ref.Unit != "" && ref.Unit != unit {
		return nil, fmt.Errorf("systemd: load %s: unit %q is not the group's scope: %w", ref.ID, ref.Unit, cgroup.ErrInvalidID)
	}
	path, err := b.controlGroup(ctx, unit)
	if err != nil {
		return nil, fmt.Errorf("systemd: load %s: %w", unit, err)
	}
	return &group{b: b, id: ref.ID, unit: unit, path: path}, nil
}

// Groups lists the orphand scopes systemd has loaded and running.
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
	}
	return refs, nil
}
