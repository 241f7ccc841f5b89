package nspawn

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Paths and variables the container sees.
const (
	// GuestShare is where Options.Share appears inside the container.
	GuestShare = "/mnt/host"
	// EnvInside is set to "1" in the environment of the script (and so of a
	// test binary it runs): code can tell it runs inside the container.
	EnvInside = "ORPHAND_IN_NSPAWN"

	// Reserved guest paths: the run's own control files, the unit directory
	// and the journal the host reads after a failure.
	guestControl = "/mnt/orphand-run"
	guestUnits   = "/usr/local/lib/systemd/system"
	guestJournal = "/var/log/journal"

	// runUnit is the service that runs the script.
	runUnit = "orphand-run.service"
)

// DefaultTimeout bounds a run whose Options.Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// Bind is an extra bind mount from the host into the container.
type Bind struct {
	Host     string // existing host path (file or directory)
	Guest    string // absolute path inside; created if missing
	ReadOnly bool
}

// Options describe one boot of the container.
type Options struct {
	// Share is a host directory bound read-write at GuestShare ("/mnt/host").
	// Optional.
	Share string
	// Binds are extra bind mounts.
	Binds []Bind
	// Script is bash source run as root in a service ordered after
	// multi-user.target, from GuestShare (or / without a Share), with
	// stdin from /dev/null. Its exit status is Run's exit code. It may be a
	// path ("/mnt/host/run.sh") or several lines of commands.
	Script string
	// Env is added to the script's environment. EnvInside is always set.
	Env map[string]string
	// Units are unit files installed before boot (file name -> content), e.g.
	// "foo.service" or a drop-in "foo.service.d/override.conf". A unit with
	// WantedBy= or RequiredBy= in [Install] is enabled (templates are not).
	Units map[string]string
	// Timeout bounds the whole run, boot to teardown; DefaultTimeout if 0.
	Timeout time.Duration
	// Output receives the script's stdout and stderr while it runs, and the
	// journal's last lines when the script fails. Optional.
	Output io.Writer
	// Console, if set, receives the container's console (systemd's boot and
	// shutdown messages) live. Its tail is in every *Error regardless.
	Console io.Writer
	// Logger receives the harness's own progress; nil discards it.
	Logger *slog.Logger
	// Rootfs overrides the root filesystem (default: Rootfs(ctx)). It is
	// never written to: each run gets a throw-away overlay.
	Rootfs string
}

// unitName is what systemd accepts as a unit file name, or a drop-in in its
// ".d" directory.
var unitName = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|path|mount|automount|slice|swap)(\.d/[A-Za-z0-9:_.@-]+\.conf)?$`)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validate checks what can be checked without touching the host, and
// returns the binds the run needs (Share first) with absolute host paths.
func (o *Options) validate() ([]Bind, error) {
	var errs []error
	if strings.TrimSpace(o.Script) == "" {
		errs = append(errs, errors.New("Options.Script is empty: give the bash code to run inside"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Options.Timeout is negative (%v)", o.Timeout))
	}
	var binds []Bind
	if o.Share != "" {
		binds = append(binds, Bind{Host: o.Share, Guest: GuestShare})
	}
	binds = append(binds, o.Binds...)
	for i := range binds {
		b := &binds[i]
		if b.Host == "" || !filepath.IsAbs(b.Guest) {
			errs = append(errs, fmt.Errorf("bind %q -> %q: need a host path and an absolute guest path", b.Host, b.Guest))
			continue
		}
		abs, err := filepath.Abs(b.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("bind %q: %w", b.Host, err))
			continue
		}
		b.Host, b.Guest = abs, filepath.Clean(b.Guest)
		// nspawn splits --bind on ':'; escaping is not worth supporting here.
		if strings.Contains(b.Host, ":") || strings.Contains(b.Guest, ":") {
			errs = append(errs, fmt.Errorf("bind %q -> %q: paths with ':' are not supported", b.Host, b.Guest))
		}
		for _, r := range []string{guestControl, guestUnits, guestJournal} {
			if b.Guest == r || strings.HasPrefix(b.Guest, r+"/") || strings.HasPrefix(r, b.Guest+"/") || b.Guest == "/" {
				errs = append(errs, fmt.Errorf("bind to %q would hide %s, which the harness uses; pick another guest path", b.Guest, r))
				break
			}
		}
	}
	for k := range o.Env {
		if !envName.MatchString(k) {
			errs = append(errs, fmt.Errorf("Options.Env: %q is not a valid variable name", k))
		}
	}
	for name := range o.Units {
		if !unitName.MatchString(name) || name == runUnit || strings.Contains(name, "..") {
			errs = append(errs, fmt.Errorf("Options.Units: %q is not a unit file name like foo.service or foo.service.d/x.conf (and not %s)", name, runUnit))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("nspawn: invalid options: %w", errors.Join(errs...))
	}
	return binds, nil
}

// timeout is the effective bound of the run.
func (o *Options) timeout() time.Duration {
	if o.Timeout == 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// logger never returns nil.
func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// sortedKeys returns a map's keys in order, so generated files are stable.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
