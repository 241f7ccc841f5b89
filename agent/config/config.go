// Package config reads the orphand agent's configuration file: TOML, by
// default /etc/orphand/orphand.toml. Every key is optional; a missing key
// keeps its default, and an unknown key is an error (a typo must not pass
// silently). See [Default] for the keys and their defaults.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"

	"github.com/orphand/orphand/agent"
	"github.com/orphand/orphand/internal/signame"
	"github.com/orphand/orphand/ipc"
)

// DefaultPath is where the agent looks for its configuration file.
const DefaultPath = "/etc/orphand/orphand.toml"

// Log formats (log_format).
const (
	LogAuto    = "auto"    // journal when stderr is the journal, else text
	LogText    = "text"    // log/slog's text lines on stderr
	LogJSON    = "json"    // log/slog's JSON lines on stderr
	LogJournal = "journal" // journald's native protocol, with a field per attribute
)

// File is the configuration file's content.
type File struct {
	Backend       string   `toml:"backend"`        // auto | systemd | cgroupfs | proc
	Socket        string   `toml:"socket"`         // the agent's own listener, when not socket-activated
	StateDir      string   `toml:"state_dir"`      // records that survive a restart
	CgroupRoot    string   `toml:"cgroup_root"`    // cgroupfs: where groups are created; "" = automatic
	LogLevel      string   `toml:"log_level"`      // debug | info | warn | error
	LogFormat     string   `toml:"log_format"`     // auto | text | json | journal
	DefaultGrace  Duration `toml:"default_grace"`  // polite signal → SIGKILL, when a request names none
	DefaultSignal string   `toml:"default_signal"` // the polite signal, when a request names none
	ShutdownGrace Duration `toml:"shutdown_grace"` // time for requests and kills in flight at stop
	StuckAfter    Duration `toml:"stuck_after"`    // populated this long after SIGKILL: the group is stuck
	// MetricsAddress is where Prometheus metrics are served: "HOST:PORT",
	// or an absolute path for a Unix socket; "" (the default) serves none.
	MetricsAddress string `toml:"metrics_address"`
	// CompatSocket, when set, is where the agent also serves the original
	// orphand's 12-byte protocol (docs/compat.md); "" leaves it off.
	// CompatSignal is the polite signal of the groups it makes.
	CompatSocket string `toml:"compat_socket"`
	CompatSignal string `toml:"compat_signal"`
	Limits       Limits `toml:"limits"`
}

// Limits is the [limits] table. A quota of 0 means unlimited; so does a
// timeout of 0.
type Limits struct {
	GroupsPerUID           int      `toml:"groups_per_uid"`
	GroupsTotal            int      `toml:"groups_total"`
	ConnectionsPerUID      int      `toml:"connections_per_uid"`
	ConnectionsTotal       int      `toml:"connections_total"`
	ConnectionsRootReserve int      `toml:"connections_root_reserve"` // of the total, kept for root
	TargetsPerWatch        int      `toml:"targets_per_watch"`
	TargetsPerUID          int      `toml:"targets_per_uid"`
	TargetsTotal           int      `toml:"targets_total"`
	IdleTimeout            Duration `toml:"idle_timeout"`      // a connection that sends no request is dropped
	LineTimeout            Duration `toml:"line_timeout"`      // a request line begun must arrive whole within this
	MaxRequest             int      `toml:"max_request"`       // bytes in a request line, newline included
	DeadRetention          Duration `toml:"dead_retention"`    // how long ended groups stay in list/show
	DeadMax                int      `toml:"dead_max"`          // how many ended groups stay at most
	SubscriberBuffer       int      `toml:"subscriber_buffer"` // events queued for a slow subscriber
	ParallelKills          int      `toml:"parallel_kills"`    // kills running at once
	WriteTimeout           Duration `toml:"write_timeout"`     // a client that does not read is dropped
}

// Duration is a time.Duration written as a string: "500ms", "10s", "5m".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it like \"500ms\", \"10s\" or \"5m\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration the agent runs with when no file
// exists: the agent's defaults, the default socket and state directory.
func Default() File {
	a := agent.DefaultConfig()
	return File{
		Backend:       "auto",
		Socket:        ipc.DefaultSocket,
		StateDir:      "/var/lib/orphand",
		LogLevel:      "info",
		LogFormat:     LogAuto,
		DefaultGrace:  Duration{a.DefaultGrace},
		DefaultSignal: signame.Name(a.DefaultSignal),
		ShutdownGrace: Duration{a.ShutdownGrace},
		StuckAfter:    Duration{a.StuckAfter},
		CompatSocket:  "",
		CompatSignal:  "SIGINT", // the original daemon's
		Limits: Limits{
			GroupsPerUID:           a.Limits.GroupsPerUID,
			GroupsTotal:            a.Limits.GroupsTotal,
			ConnectionsPerUID:      a.Limits.ConnsPerUID,
			ConnectionsTotal:       a.Limits.ConnsTotal,
			ConnectionsRootReserve: a.Limits.ConnsRootReserve,
			TargetsPerWatch:        a.Limits.TargetsPerWatch,
			TargetsPerUID:          a.Limits.TargetsPerUID,
			TargetsTotal:           a.Limits.TargetsTotal,
			IdleTimeout:            Duration{a.Conn.IdleTimeout},
			LineTimeout:            Duration{a.Conn.LineTimeout},
			MaxRequest:             a.Conn.MaxRequest,
			DeadRetention:          Duration{a.DeadRetention},
			DeadMax:                a.DeadMax,
			SubscriberBuffer:       a.SubscriberBuffer,
			ParallelKills:          a.ParallelKills,
			WriteTimeout:           Duration{a.WriteTimeout},
		},
	}
}

// maxFile bounds what Parse reads: a real configuration is a few hundred
// bytes.
const maxFile = 1 << 20

// Parse decodes TOML from r over f (keys absent from r keep f's values),
// then validates the result. Unknown keys are an error.
func Parse(r io.Reader, f *File) error {
	b, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return err
	}
	if len(b) > maxFile {
		return fmt.Errorf("larger than %d bytes", maxFile)
	}
	md, err := toml.Decode(string(b), f)
	if err != nil {
		return oneLine(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("unknown key %s (see the documented keys in orphand --help)", strings.Join(keys, ", "))
	}
	return f.Validate()
}

// Load reads the file at path over the defaults. A missing file is an
// error only when the path was named explicitly; else the defaults apply.
func Load(path string, explicit bool) (File, error) {
	return LoadOver(path, explicit, Default())
}

// LoadOver is Load over the defaults f (a per-user agent's: [UserDefault]).
func LoadOver(path string, explicit bool, f File) (File, error) {
	fh, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return f, nil
		}
		return f, fmt.Errorf("config %s: %w", path, err)
	}
	defer fh.Close()
	if err := Parse(fh, &f); err != nil {
		return f, fmt.Errorf("config %s: %w", path, err)
	}
	return f, nil
}

// Validate reports the first value that cannot work, naming its key.
func (f File) Validate() error {
	switch f.Backend {
	case "auto", "systemd", "cgroupfs", "proc":
	default:
		return fmt.Errorf("backend %q: use auto, systemd, cgroupfs or proc", f.Backend)
	}
	for key, p := range map[string]string{"socket": f.Socket, "state_dir": f.StateDir} {
		if p == "" || !filepath.IsAbs(p) {
			return fmt.Errorf("%s %q: must be an absolute path", key, p)
		}
	}
	if _, err := ParseLevel(f.LogLevel); err != nil {
		return err
	}
	switch f.LogFormat {
	case LogAuto, LogText, LogJSON, LogJournal:
	default:
		return fmt.Errorf("log_format %q: use auto, text, json or journal", f.LogFormat)
	}
	if err := checkMetricsAddress(f.MetricsAddress); err != nil {
		return err
	}
	if _, err := signame.Parse(f.DefaultSignal); err != nil {
		return fmt.Errorf("default_signal: %w", err)
	}
	if err := f.validateCompat(); err != nil {
		return err
	}
	_, err := f.Agent()
	return err
}

// validateCompat checks the compatibility socket's keys.
func (f File) validateCompat() error {
	if f.CompatSocket != "" && (!filepath.IsAbs(f.CompatSocket) || filepath.Clean(f.CompatSocket) == filepath.Clean(f.Socket)) {
		return fmt.Errorf("compat_socket %q: must be an absolute path, other than socket's", f.CompatSocket)
	}
	if _, err := signame.Parse(f.CompatSignal); err != nil {
		return fmt.Errorf("compat_signal: %w", err)
	}
	return nil
}

// CompatSignalNum is CompatSignal as a signal (the file was validated).
func (f File) CompatSignalNum() syscall.Signal {
	sig, err := signame.Parse(f.CompatSignal)
	if err != nil {
		return syscall.SIGINT
	}
	return sig
}

// Agent returns the agent configuration the file describes (Subreaper and
// OnReady are left for the caller).
func (f File) Agent() (agent.Config, error) {
	c := agent.DefaultConfig()
	sig, err := signame.Parse(f.DefaultSignal)
	if err != nil {
		return c, fmt.Errorf("default_signal: %w", err)
	}
	l := f.Limits
	for key, v := range map[string]int{
		"limits.groups_per_uid": l.GroupsPerUID, "limits.groups_total": l.GroupsTotal,
		"limits.connections_per_uid": l.ConnectionsPerUID, "limits.connections_total": l.ConnectionsTotal,
		"limits.connections_root_reserve": l.ConnectionsRootReserve,
		"limits.targets_per_watch":        l.TargetsPerWatch, "limits.targets_per_uid": l.TargetsPerUID,
		"limits.targets_total": l.TargetsTotal, "limits.dead_max": l.DeadMax,
	} {
		if v < 0 {
			return c, fmt.Errorf("%s = %d: must not be negative (0 means unlimited)", key, v)
		}
	}
	for key, v := range map[string]int{"limits.subscriber_buffer": l.SubscriberBuffer, "limits.parallel_kills": l.ParallelKills} {
		if v < 1 {
			return c, fmt.Errorf("%s = %d: must be at least 1", key, v)
		}
	}
	for key, d := range map[string]time.Duration{
		"default_grace": f.DefaultGrace.Duration, "shutdown_grace": f.ShutdownGrace.Duration,
		"limits.dead_retention": l.DeadRetention.Duration,
		"limits.idle_timeout":   l.IdleTimeout.Duration, "limits.line_timeout": l.LineTimeout.Duration,
	} {
		if d < 0 {
			return c, fmt.Errorf("%s = %v: must not be negative", key, d)
		}
	}
	if f.StuckAfter.Duration <= 0 {
		return c, fmt.Errorf("stuck_after = %v: must be positive", f.StuckAfter.Duration)
	}
	if l.WriteTimeout.Duration <= 0 {
		return c, fmt.Errorf("limits.write_timeout = %v: must be positive", l.WriteTimeout.Duration)
	}
	if l.MaxRequest < 4096 || l.MaxRequest > ipc.MaxLine {
		return c, fmt.Errorf("limits.max_request = %d: must be between 4096 and %d bytes", l.MaxRequest, ipc.MaxLine)
	}
	if l.ConnectionsTotal > 0 && l.ConnectionsRootReserve >= l.ConnectionsTotal {
		return c, fmt.Errorf("limits.connections_root_reserve = %d: must be below limits.connections_total (%d), or only root could connect",
			l.ConnectionsRootReserve, l.ConnectionsTotal)
	}
	c.DefaultGrace = f.DefaultGrace.Duration
	c.DefaultSignal = sig
	c.ShutdownGrace = f.ShutdownGrace.Duration
	c.StuckAfter = f.StuckAfter.Duration
	c.Limits.GroupsPerUID, c.Limits.GroupsTotal = l.GroupsPerUID, l.GroupsTotal
	c.Limits.ConnsPerUID, c.Limits.ConnsTotal = l.ConnectionsPerUID, l.ConnectionsTotal
	c.Limits.ConnsRootReserve = l.ConnectionsRootReserve
	c.Limits.TargetsPerWatch, c.Limits.TargetsPerUID = l.TargetsPerWatch, l.TargetsPerUID
	c.Limits.TargetsTotal = l.TargetsTotal
	c.Conn = agent.ConnLimits{IdleTimeout: l.IdleTimeout.Duration, LineTimeout: l.LineTimeout.Duration, MaxRequest: l.MaxRequest}
	c.DeadRetention, c.DeadMax = l.DeadRetention.Duration, l.DeadMax
	c.SubscriberBuffer, c.ParallelKills = l.SubscriberBuffer, l.ParallelKills
	c.WriteTimeout = l.WriteTimeout.Duration
	return c, c.Validate()
}

// oneLine keeps a TOML error on one line (toml.ParseError's long form
// quotes the input over several).
func oneLine(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %s", pe.Position.Line, escapeControls(pe.Message))
	}
	return errors.New(strings.Join(strings.Fields(err.Error()), " "))
}

// escapeControls writes control characters as Go escapes (\n, \x00): the
// TOML parser quotes the bad input in its message, newlines included
// (found by FuzzParse).
func escapeControls(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// checkMetricsAddress accepts "" (no metrics), an absolute path (a Unix
// socket) or HOST:PORT with a numeric port (HOST may be empty: every
// address).
func checkMetricsAddress(addr string) error {
	if addr == "" || filepath.IsAbs(addr) {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("metrics_address %q: write HOST:PORT (such as 127.0.0.1:9464) or the absolute path of a Unix socket", addr)
	}
	return nil
}
