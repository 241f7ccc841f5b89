package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/agent"
)

func TestParse(t *testing.T) {
	full := `
backend = "cgroupfs"
socket = "/run/x/orphand.sock"
state_dir = "/var/lib/x"
cgroup_root = "/orphand-test"
log_level = "debug"
log_format = "json"
default_grace = "1500ms"
default_signal = "INT"
shutdown_grace = "1s"
stuck_after = "30s"
metrics_address = "127.0.0.1:9464"

[limits]
groups_per_uid = 5
groups_total = 0
connections_per_uid = 6
connections_total = 7
targets_per_watch = 8
targets_per_uid = 9
targets_total = 13
connections_root_reserve = 2
idle_timeout = "1m"
line_timeout = "4s"
max_request = 8192
dead_retention = "2m"
dead_max = 10
subscriber_buffer = 11
parallel_kills = 12
write_timeout = "3s"
`
	f := Default()
	if err := Parse(strings.NewReader(full), &f); err != nil {
		t.Fatal(err)
	}
	a, err := f.Agent()
	if err != nil {
		t.Fatal(err)
	}
	if f.Backend != "cgroupfs" || f.Socket != "/run/x/orphand.sock" || f.CgroupRoot != "/orphand-test" || f.LogFormat != "json" ||
		f.MetricsAddress != "127.0.0.1:9464" {
		t.Fatalf("file: %+v", f)
	}
	if a.DefaultGrace != 1500*time.Millisecond || a.DefaultSignal != syscall.SIGINT || a.ShutdownGrace != time.Second ||
		a.Limits.GroupsPerUID != 5 || a.Limits.GroupsTotal != 0 || a.Limits.ConnsPerUID != 6 || a.Limits.ConnsTotal != 7 ||
		a.Limits.TargetsPerWatch != 8 || a.Limits.TargetsPerUID != 9 || a.DeadRetention != 2*time.Minute ||
		a.DeadMax != 10 || a.SubscriberBuffer != 11 || a.ParallelKills != 12 || a.WriteTimeout != 3*time.Second ||
		a.Limits.TargetsTotal != 13 || a.Limits.ConnsRootReserve != 2 || a.StuckAfter != 30*time.Second ||
		a.Conn != (agent.ConnLimits{IdleTimeout: time.Minute, LineTimeout: 4 * time.Second, MaxRequest: 8192}) {
		t.Fatalf("agent config: %+v", a)
	}

	// A partial file keeps the other defaults.
	f = Default()
	if err := Parse(strings.NewReader("[limits]\ndead_max = 3\n"), &f); err != nil {
		t.Fatal(err)
	}
	if d := Default(); f.Limits.DeadMax != 3 || f.Socket != d.Socket || f.Limits.GroupsPerUID != d.Limits.GroupsPerUID {
		t.Fatalf("partial: %+v", f)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`bakend = "auto"`, "unknown key bakend"},
		{"[limits]\ngroup_per_uid = 1", "unknown key limits.group_per_uid"},
		{"[limit]\nx = 1", "unknown key"},
		{`backend = "docker"`, `backend "docker"`},
		{`socket = "relative.sock"`, "socket"},
		{`state_dir = ""`, "state_dir"},
		{`log_level = "loud"`, "log level"},
		{`log_format = "xml"`, "log_format"},
		{`stuck_after = "0s"`, "stuck_after"},
		{`metrics_address = "9464"`, "metrics_address"},
		{`metrics_address = "localhost:http"`, "metrics_address"},
		{`metrics_address = "relative/metrics.sock"`, "metrics_address"},
		{`default_signal = "SIGNOPE"`, "default_signal"},
		{`default_grace = "soon"`, "not a duration"},
		{`default_grace = "-1s"`, "default_grace"},
		{`default_grace = 5`, "line 1"},
		{"[limits]\ngroups_per_uid = -1", "limits.groups_per_uid"},
		{"[limits]\nparallel_kills = 0", "limits.parallel_kills"},
		{"[limits]\nwrite_timeout = \"0s\"", "limits.write_timeout"},
		{"[limits]\nmax_request = 100", "limits.max_request"},
		{"[limits]\nmax_request = 70000", "limits.max_request"},
		{"[limits]\nidle_timeout = \"-1s\"", "limits.idle_timeout"},
		{"[limits]\nline_timeout = \"-1s\"", "limits.line_timeout"},
		{"[limits]\ntargets_total = -1", "limits.targets_total"},
		{"[limits]\nconnections_total = 10\nconnections_root_reserve = 10", "limits.connections_root_reserve"},
		{"backend = \"auto\"\nbackend = \"auto\"", "line 2"},
		{"this is not toml", "line 1"},
	}
	for _, tt := range tests {
		f := Default()
		err := Parse(strings.NewReader(tt.in), &f)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tt.in, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error spans lines: %q", tt.in, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.toml")
	f, err := Load(missing, false)
	if err != nil || f != Default() {
		t.Fatalf("missing default file: %+v %v", f, err)
	}
	if _, err := Load(missing, true); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing explicit file: %v", err)
	}
	p := filepath.Join(dir, "orphand.toml")
	if err := os.WriteFile(p, []byte("log_level = \"warn\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := Load(p, true); err != nil || f.LogLevel != "warn" {
		t.Fatalf("%+v %v", f, err)
	}
	if err := os.WriteFile(p, []byte("nope = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, false); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("a bad file must fail, naming it: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("backend = \"auto\"\n[limits]\ndead_max = 3\n"))
	f.Add([]byte("default_grace = \"1s\"\n"))
	f.Add([]byte("[[x]]\ny = [1, 2, {a = 1}]"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := Default()
		if err := Parse(strings.NewReader(string(in)), &cfg); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		if _, err := cfg.Agent(); err != nil {
			t.Fatalf("Parse accepted a config Agent refuses: %v", err)
		}
	})
}

// The file's defaults are the agent's: a missing key changes nothing.
func TestDefaultsMatchAgent(t *testing.T) {
	a, err := Default().Agent()
	if err != nil {
		t.Fatal(err)
	}
	d := agent.DefaultConfig()
	if a.Limits != d.Limits || a.Conn != d.Conn || a.WriteTimeout != d.WriteTimeout || a.ParallelKills != d.ParallelKills {
		t.Fatalf("file defaults %+v %+v differ from the agent's %+v %+v", a.Limits, a.Conn, d.Limits, d.Conn)
	}
	f := Default()
	if err := Parse(strings.NewReader("[limits]\nidle_timeout = \"0s\"\nline_timeout = \"0s\"\n"), &f); err != nil {
		t.Fatalf("0 disables the timeouts: %v", err)
	}
}

// The TOML parser quotes bad input in its errors, control characters and
// all; the error stays on one line (a crasher FuzzParse found is kept in
// testdata/fuzz).
func TestParseErrorEscapesControls(t *testing.T) {
	f := Default()
	err := Parse(strings.NewReader("0=[0b\n00"), &f)
	if err == nil || strings.ContainsAny(err.Error(), "\n\x00") || !strings.Contains(err.Error(), `\n`) {
		t.Fatalf("err = %q", err)
	}
}
