// Package auto opens the cgroup backend the agent should use: the one
// named on its command line (--backend), or with "auto" the best one the
// host offers:
//
//  1. systemd, when PID 1 is systemd (/run/systemd/system exists, as
//     sd_booted(3) checks) and its bus answers: groups become transient
//     scopes, so systemd's view of the system stays true;
//  2. else cgroupfs, when a writable cgroup v2 hierarchy exists;
//  3. else proc (package cgroup/proc): descendants tracked by pidfd,
//     with weaker guarantees that docs/backends.md spells out.
//
// For a per-user agent (Config.User) the order is the same, each backend
// limited to what the user may use: systemd means the user's own service
// manager (systemd --user) and its delegated subtree; cgroupfs only a
// cgroup delegated to the user (Config.CgroupRoot, or the agent's own
// cgroup marked delegated); and the proc backend has no proc connector,
// which needs CAP_NET_ADMIN, so a double fork (a setsid daemon's) can
// escape it — Open says so in a warning.
//
// Open logs the choice and the probed features once.
package auto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/cgroup/systemd"
)

// Backend names accepted in Config.Backend.
const (
	Auto     = "auto"
	Systemd  = "systemd"
	Cgroupfs = "cgroupfs"
	Proc     = "proc"
)

// Names lists the accepted backend names, for flag help.
var Names = []string{Auto, Systemd, Cgroupfs, Proc}

// Config selects and configures the backend.
type Config struct {
	// Backend is Auto (or ""), Systemd, Cgroupfs or Proc.
	Backend string
	// CgroupRoot is the cgroupfs backend's root (--cgroup-root); see
	// cgroupfs.Config.Root.
	CgroupRoot string
	// User opens the backends of a per-user agent (see the package doc).
	User bool
	// NoCgroupKill forces the kill pipeline's freeze + SIGKILL fallback,
	// as on kernels before 5.14 (for tests and misbehaving kernels).
	NoCgroupKill bool
	// Logger receives the choice, the probe results and the backends'
	// messages; nil discards them.
	Logger *slog.Logger
}

// Open opens the backend cfg asks for. Its error wraps
// cgroup.ErrUnavailable when no backend can serve, and says why.
func Open(ctx context.Context, cfg Config) (cgroup.Backend, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var reasons []string
	try := func(name string) (cgroup.Backend, bool) {
		b, err := open(ctx, name, cfg, log)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", name, err))
			return nil, false
		}
		return b, true
	}
	var order []string
	switch cfg.Backend {
	case "", Auto:
		order = []string{Systemd, Cgroupfs, Proc}
	case Systemd, Cgroupfs, Proc:
		order = []string{cfg.Backend}
	default:
		return nil, fmt.Errorf("cgroup: unknown backend %q (use one of %s)", cfg.Backend, strings.Join(Names, ", "))
	}
	for _, name := range order {
		if b, ok := try(name); ok {
			f := b.Features()
			log.Info("cgroup backend", "backend", b.Name(), "mount", f.Mount, "layout", f.Layout,
				"root", f.Root, "cgroup.kill", f.Kill && !cfg.NoCgroupKill, "cgroup.freeze", f.Freeze,
				"openat2", f.Openat2, "systemd", f.Systemd, "not_chosen", reasons)
			warnProc(log, b, cfg.User, len(order) > 1, reasons)
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: no cgroup backend can serve: %s", cgroup.ErrUnavailable, strings.Join(reasons, "; "))
}

func open(ctx context.Context, name string, cfg Config, log *slog.Logger) (cgroup.Backend, error) {
	switch name {
	case Systemd:
		if !SystemdBooted() {
			return nil, errors.New("PID 1 is not systemd (/run/systemd/system does not exist)")
		}
		return systemd.Open(ctx, systemd.Config{User: cfg.User, NoCgroupKill: cfg.NoCgroupKill, Logger: log})
	case Cgroupfs:
		return cgroupfs.Open(ctx, cgroupfs.Config{Root: cfg.CgroupRoot, User: cfg.User, NoCgroupKill: cfg.NoCgroupKill, Logger: log})
	default:
		return proc.Open(ctx, proc.Config{Logger: log})
	}
}

// warnProc says loudly what the proc backend cannot promise when auto
// chose it as the last resort (a misconfigured cgroup tree silently
// weakens every promise), and always for a per-user agent, which has no
// proc connector.
func warnProc(log *slog.Logger, b cgroup.Backend, user, auto bool, reasons []string) {
	if b.Name() != Proc {
		return
	}
	tracking := ""
	if t, ok := b.(cgroup.Tracker); ok {
		tracking = t.Tracking()
	}
	if user && tracking != proc.TrackConnector {
		log.Warn("per-user agent on the proc backend: it can miss a process that double-forks (a setsid daemon) and lose it when its spawner dies, "+
			"because without root the proc connector (CAP_NET_ADMIN) is unavailable and forks are found by walking /proc; "+
			"run the agent under your systemd user manager (systemctl --user enable --now orphand.socket) or in a cgroup delegated to you to close that gap (see docs/user.md)",
			"tracking", tracking)
		return
	}
	if auto {
		log.Warn("no writable cgroup v2: using the proc backend, which cannot follow every double fork (see docs/backends.md); fix the cause above or choose --backend explicitly",
			"why", strings.Join(reasons, "; "))
	}
}

// SystemdBooted reports whether the system was booted with systemd, the
// way sd_booted(3) tells: /run/systemd/system is a directory.
func SystemdBooted() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}
