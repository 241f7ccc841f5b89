package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/sdmanager"
)

// Backend is the systemd backend. It is safe for concurrent use.
type Backend struct {
	conn     *sdbus.Conn
	fs       *cgroup.FS
	features cgroup.Features
	log      *slog.Logger
	// manager is the cgroup of the manager's subtree for a user manager
	// ("/user.slice/user-1000.slice/user@1000.service"), "" for the
	// system's: placement reads spawners' cgroups relative to it.
	manager  string
	noPIDFDs atomic.Bool   // systemd refused the PIDFDs property once
	calls    chan struct{} // semaphore: D-Bus method calls in flight
}

// maxCalls bounds the D-Bus method calls in flight on the connection.
// dbus-daemon refuses a connection more than max_replies_per_connection
// (128 on Debian's system bus) pending replies; a burst of registrations
// must queue here instead of failing there.
const maxCalls = 64

// call runs one D-Bus method call once fewer than maxCalls are in flight.
func (b *Backend) call(ctx context.Context, f func() error) error {
	select {
	case b.calls <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.calls }()
	return f()
}

var _ cgroup.Backend = (*Backend)(nil)

// Open connects to systemd over the system bus (with cfg.User, to the
// user's own manager), discovers the cgroup2 mount systemd manages and
// looks in the agent's own cgroup for cgroup.kill and cgroup.freeze (it
// cannot create a scratch cgroup in a tree systemd owns). Its error wraps
// cgroup.ErrUnavailable when systemd cannot be reached.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := cfg.Mount
	if m.Path == "" {
		var err error
		if m, err = cgroup.Discover(); err != nil {
			return nil, err
		}
	}
	fs, err := cgroup.OpenFS(m, cgroup.Options{NoKill: cfg.NoCgroupKill, Logger: log})
	if err != nil {
		return nil, err
	}
	b := &Backend{fs: fs, log: log, calls: make(chan struct{}, maxCalls)}
	if err := b.connect(ctx, cfg.User); err != nil {
		_ = b.Close()
		return nil, err
	}
	if err := b.probe(); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// connect reaches the system manager over the system bus, or with user
// the user's own manager (sdmanager.DialUser: the user bus, else the
// manager's private socket), whose subtree it then reads.
func (b *Backend) connect(ctx context.Context, user bool) error {
	if !user {
		conn, err := sdbus.NewSystemConnectionContext(ctx)
		if err != nil {
			return fmt.Errorf("%w: systemd: cannot reach systemd on the system bus (is dbus running?): %w", cgroup.ErrUnavailable, err)
		}
		b.conn = conn
		return nil
	}
	conn, ep, err := sdmanager.DialUser(ctx)
	if err != nil {
		return fmt.Errorf("%w: systemd: cannot reach your user manager (systemd --user; is user@%d.service running? `loginctl enable-linger` starts it without a login): %w",
			cgroup.ErrUnavailable, os.Geteuid(), err)
	}
	b.conn = conn
	if b.manager, err = sdmanager.ManagerCgroup(conn); err != nil {
		return fmt.Errorf("%w: systemd: your user manager: %w", cgroup.ErrUnavailable, err)
	}
	b.log.Info("systemd backend: scopes are units of your user manager", "via", ep.What, "subtree", b.manager)
	return nil
}

func (b *Backend) probe() error {
	version, err := b.conn.GetManagerProperty("Version")
	if err != nil {
		return fmt.Errorf("%w: systemd: read its version over D-Bus: %w", cgroup.ErrUnavailable, err)
	}
	own, err := b.fs.CgroupOf(os.Getpid())
	if err != nil {
		return fmt.Errorf("%w: systemd: %w", cgroup.ErrUnavailable, err)
	}
	kill, freeze := b.fs.HasFile(own, "cgroup.kill"), b.fs.HasFile(own, "cgroup.freeze")
	b.fs.SetFeatures(kill, freeze)
	m := b.fs.Mount()
	b.features = cgroup.Features{
		Backend: "systemd", Mount: m.Path, Layout: m.Layout,
		Kill: kill, Freeze: freeze, Writable: true, Openat2: b.fs.Openat2(),
		Systemd: strings.Trim(version, `"`),
	}
	return nil
}

// Name returns "systemd".
func (b *Backend) Name() string { return "systemd" }

// Features reports what Open found. Root is empty: scopes go into their
// spawners' slices.
func (b *Backend) Features() cgroup.Features { return b.features }

// FS returns the opened cgroup2 hierarchy.
func (b *Backend) FS() *cgroup.FS { return b.fs }

// Close closes the D-Bus connection and the mount descriptor. Scopes are
// left as they are.
func (b *Backend) Close() error {
	if b.conn != nil {
		b.conn.Close()
	}
	return b.fs.Close()
}

// D-Bus error names this package tells apart.
const (
	errNoSuchUnit       = "org.freedesktop.systemd1.NoSuchUnit"
	errUnknownProperty  = "org.freedesktop.DBus.Error.UnknownProperty"
	errPropertyReadOnly = "org.freedesktop.DBus.Error.PropertyReadOnly"
	errNoSuchProcess    = "org.freedesktop.DBus.Error.UnixProcessIdUnknown"
)

// dbusErrorName returns the D-Bus error name in err's chain, or "".
func dbusErrorName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dep *dbus.Error
	if errors.As(err, &dep) {
		return dep.Name
	}
	return ""
}
