package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/proctree"
)

// Create starts the scope orphand-<id>.scope holding spec.Pids, in the
// first pid's current slice and bound to its unit, and waits for systemd's
// job to finish before it reads the scope's cgroup. A group with a parent
// is made inside the parent's cgroup instead (createNested).
func (b *Backend) Create(ctx context.Context, spec cgroup.Spec) (cgroup.Group, error) {
	if err := cgroup.ValidateID(spec.ID); err != nil {
		return nil, err
	}
	if len(spec.Pids) == 0 {
		return nil, fmt.Errorf("systemd: create %s: a scope needs at least one process", spec.ID)
	}
	if spec.Parent != nil {
		pg, ok := spec.Parent.(*group)
		if !ok || pg.b != b {
			return nil, fmt.Errorf("systemd: create %s: the parent is not a group of this backend", spec.ID)
		}
		return b.createNested(ctx, spec, pg)
	}
	unit := unitName(spec.ID)
	props, err := b.scopeProperties(spec)
	if err != nil {
		return nil, fmt.Errorf("systemd: create %s: %w", unit, err)
	}
	if err := b.startScope(ctx, unit, props, spec.Pids); err != nil {
		return nil, fmt.Errorf("systemd: create %s: %w", unit, err)
	}
	path, err := b.controlGroup(ctx, unit)
	if err != nil {
		// Stop the scope only when systemd says it has no cgroup: started
		// but not running, nothing in it to kill. On any other error (a
		// refused or failed call) the scope may hold the caller's
		// processes: stopping it would kill them. Leave it to the agent's
		// reconciliation of unrecorded groups.
		if ctx.Err() == nil && errors.Is(err, cgroup.ErrNotFound) {
			b.stop(ctx, unit)
		} else {
			b.log.Warn("cannot read a new scope's cgroup; leaving the scope as it is", "unit", unit, "err", err)
		}
		return nil, fmt.Errorf("systemd: create %s: %w", unit, err)
	}
	return &group{b: b, id: spec.ID, unit: unit, path: path}, nil
}

// scopeProperties are the scope's properties except its processes.
func (b *Backend) scopeProperties(spec cgroup.Spec) ([]sdbus.Property, error) {
	spawner := spec.Pids[0]
	path, err := b.fs.CgroupOf(spawner)
	if err != nil {
		return nil, err
	}
	slice, owner, inside := placementUnder(b.manager, path)
	props := []sdbus.Property{
		sdbus.PropDescription(describe(spec, spawner)),
		{Name: "Delegate", Value: dbus.MakeVariant(true)},
		{Name: "CollectMode", Value: dbus.MakeVariant("inactive-or-failed")},
	}
	if inside {
		props = append(props, sdbus.PropSlice(slice))
	}
	if owner != "" {
		props = append(props, sdbus.PropBindsTo(owner), sdbus.PropAfter(owner))
	}
	return append(props, stopProperties(spec.Stop)...), nil
}

// describe names the spawner in the scope's Description=.
func describe(spec cgroup.Spec, spawner int) string {
	comm := "?"
	if st, err := proctree.ReadStat(spawner); err == nil {
		comm = st.Comm
	}
	d := fmt.Sprintf("orphand group %s of %s[%d]", spec.ID, comm, spawner)
	if spec.Description != "" {
		d += ": " + spec.Description
	}
	return d
}

// stopProperties make systemd's own stop of the scope (when its bound unit
// stops) follow the group's kill options.
func stopProperties(o cgroup.KillOptions) []sdbus.Property {
	if o.Grace <= 0 {
		return []sdbus.Property{{Name: "KillSignal", Value: dbus.MakeVariant(int32(syscall.SIGKILL))}}
	}
	sig := o.Signal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	return []sdbus.Property{
		{Name: "KillSignal", Value: dbus.MakeVariant(int32(sig))},
		{Name: "TimeoutStopUSec", Value: dbus.MakeVariant(uint64(o.Grace / time.Microsecond))},
		{Name: "SendSIGKILL", Value: dbus.MakeVariant(true)},
	}
}

// startScope sends StartTransientUnit with the processes as pidfds, or as
// pids once systemd has refused pidfds, and waits for the job's result.
func (b *Backend) startScope(ctx context.Context, unit string, props []sdbus.Property, pids []int) error {
	for {
		usePIDFDs := !b.noPIDFDs.Load()
		procProp, closeFDs, err := processProperty(pids, usePIDFDs)
		if err != nil {
			return err
		}
		result := make(chan string, 1) // buffered: go-systemd sends while holding its lock
		err = b.call(ctx, func() error {
			_, err := b.conn.StartTransientUnitContext(ctx, unit, "fail", append(props, procProp), result)
			return err
		})
		closeFDs()
		if n := dbusErrorName(err); usePIDFDs && (n == errUnknownProperty || n == errPropertyReadOnly) {
			b.log.Info("systemd does not take PIDFDs; passing pids", "systemd", b.features.Systemd)
			b.noPIDFDs.Store(true)
			continue
		}
		if err != nil {
			return dbusErr(err)
		}
		return b.waitJob(ctx, unit, result)
	}
}

// processProperty returns the scope's PIDFDs (with a func closing them
// once sent) or its PIDs.
func processProperty(pids []int, pidfds bool) (sdbus.Property, func(), error) {
	if !pidfds {
		u := make([]uint32, len(pids))
		for i, p := range pids {
			u[i] = uint32(p)
		}
		return sdbus.PropPids(u...), func() {}, nil
	}
	fds := make([]dbus.UnixFD, 0, len(pids))
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(int(fd))
		}
	}
	for _, p := range pids {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			closeAll()
			if errors.Is(err, unix.ESRCH) {
				return sdbus.Property{}, nil, fmt.Errorf("pid %d: %w", p, os.ErrProcessDone)
			}
			return sdbus.Property{}, nil, os.NewSyscallError("pidfd_open", err)
		}
		fds = append(fds, dbus.UnixFD(fd))
	}
	return sdbus.Property{Name: "PIDFDs", Value: dbus.MakeVariant(fds)}, closeAll, nil
}

// waitJob waits for the result of the unit's start job. A scope whose start
// failed is reset so that systemd collects it.
func (b *Backend) waitJob(ctx context.Context, unit string, result <-chan string) error {
	select {
	case r := <-result:
		if r == "done" {
			return nil
		}
		b.resetFailed(ctx, unit)
		return fmt.Errorf("systemd's job to start it ended %q (see journalctl -u %s)", r, unit)
	case <-ctx.Done():
		// Stopping the scope now would kill the caller's processes if the
		// job succeeds after all; leave it for the agent to reconcile.
		b.log.Warn("gave up waiting for a scope to start; it may still start", "unit", unit)
		return ctx.Err()
	}
}

// controlGroup reads the scope's cgroup, relative to the cgroup2 mount.
func (b *Backend) controlGroup(ctx context.Context, unit string) (string, error) {
	var p *sdbus.Property
	err := b.call(ctx, func() (err error) {
		p, err = b.conn.GetUnitTypePropertyContext(ctx, unit, "Scope", "ControlGroup")
		return err
	})
	if err != nil {
		return "", dbusErr(err)
	}
	path, ok := p.Value.Value().(string)
	if !ok || path == "" {
		return "", fmt.Errorf("%s has no cgroup (it is not running): %w", unit, cgroup.ErrNotFound)
	}
	if _, err := cgroup.SplitPath(path); err != nil {
		return "", fmt.Errorf("systemd gave %s the cgroup %q: %w", unit, path, err)
	}
	return path, nil
}

// stop stops the scope and waits briefly for the job; a unit already gone
// is fine. It is best effort, for cleanup paths.
func (b *Backend) stop(ctx context.Context, unit string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.stopUnit(ctx, unit); err != nil {
		b.log.Warn("cannot stop a scope", "unit", unit, "err", err)
	}
}

func (b *Backend) stopUnit(ctx context.Context, unit string) error {
	result := make(chan string, 1)
	err := b.call(ctx, func() error {
		_, err := b.conn.StopUnitContext(ctx, unit, "replace", result)
		return err
	})
	if dbusErrorName(err) == errNoSuchUnit {
		return nil
	}
	if err != nil {
		return dbusErr(err)
	}
	select {
	case r := <-result:
		if r != "done" {
			b.resetFailed(ctx, unit)
			return fmt.Errorf("systemd's job to stop %s ended %q", unit, r)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resetFailed makes systemd forget a failed unit (best effort, even when
// ctx is done).
func (b *Backend) resetFailed(ctx context.Context, unit string) {
	ctx = context.WithoutCancel(ctx)
	_ = b.call(ctx, func() error { return b.conn.ResetFailedUnitContext(ctx, unit) })
}

// dbusErr maps systemd's errors onto the ones callers test for.
func dbusErr(err error) error {
	switch dbusErrorName(err) {
	case errNoSuchUnit:
		return fmt.Errorf("%w: %w", cgroup.ErrNotFound, err)
	case errNoSuchProcess:
		return fmt.Errorf("%w: %w", os.ErrProcessDone, err)
	}
	return err
}
