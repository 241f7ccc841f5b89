package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = runMain(args, &o, &e)
	return o.String(), e.String(), code
}

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		grace string
		pos   string
	}{
		{[]string{"g1"}, "", "[g1]"},
		{[]string{"g1", "--grace", "5s"}, "5s", "[g1]"},
		{[]string{"--grace=2", "g1", "extra"}, "2s", "[g1 extra]"},
		{[]string{"g1", "--", "--grace", "x"}, "", "[g1 --grace x]"},
		{[]string{"--", "-g"}, "", "[-g]"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var g graceFlag
		fs.Var(&g, "grace", "")
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := fmtSlice(pos); got != tc.pos || g.String() != tc.grace {
			t.Errorf("%q: positional %s grace %q, want %s %q", tc.args, got, g.String(), tc.pos, tc.grace)
		}
	}
}

func fmtSlice(s []string) string { return "[" + strings.Join(s, " ") + "]" }

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5s": 5 * time.Second, "250ms": 250 * time.Millisecond, "2": 2 * time.Second,
		"0.5": 500 * time.Millisecond, "0": 0, "1m30s": 90 * time.Second,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "-2s", "5 parsecs", "1e300"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) succeeded", bad)
		}
	}
}

func TestGraceFlag(t *testing.T) {
	var g graceFlag
	if d := g.duration(); d != nil {
		t.Errorf("unset grace = %v, want nil (the agent's default)", *d)
	}
	for in, want := range map[string]time.Duration{"0": 0, "1us": time.Microsecond, "1.5ms": 1500 * time.Microsecond, "2s": 2 * time.Second} {
		g = graceFlag{}
		if err := g.Set(in); err != nil {
			t.Fatal(err)
		}
		if d := g.duration(); d == nil || *d != want {
			t.Errorf("grace %s = %v, want %v", in, d, want)
		}
	}
}

func TestPidList(t *testing.T) {
	var l pidList
	if err := l.Set("1,2, 3"); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("4"); err != nil {
		t.Fatal(err)
	}
	if l.String() != "1,2,3,4" {
		t.Errorf("pids = %s", l.String())
	}
	for _, bad := range []string{"x", "0", "-3", "1,,y"} {
		var l pidList
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded", bad)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"--bogus", "ls"},
		{"kill"},
		{"kill", "a", "b"},
		{"attach", "g"},
		{"attach", "g", "notapid"},
		{"watch", "--pid", "1"},
		{"watch", "--kill", "2"},
		{"register", "--pid", "zero"},
		{"show", "--grace", "1s", "g"},
		{"completion", "tcsh"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != exitUsage {
			t.Errorf("orphanctl %q exited %d, want %d (usage); stderr: %s", args, code, exitUsage, stderr)
		}
		if stderr == "" {
			t.Errorf("orphanctl %q said nothing on stderr", args)
		}
	}
}

// TestEveryCommandHasHelp also checks that --help does nothing else: the
// completion script relies on it to list flags.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Setenv(ipc.SocketEnv, filepath.Join(t.TempDir(), "none.sock")) // any dial would fail
	for _, cmd := range commands {
		for _, args := range [][]string{{cmd.name, "--help"}, {"help", cmd.name}, {"--json", cmd.name, "-h"}} {
			stdout, stderr, code := runCLI(t, args...)
			if code != exitOK || stderr != "" {
				t.Errorf("orphanctl %q: exit %d, stderr %q", args, code, stderr)
			}
			if !strings.Contains(stdout, "Usage: orphanctl "+cmd.name) {
				t.Errorf("orphanctl %q printed no usage line:\n%s", args, stdout)
			}
		}
		if cmd.name != "help" && cmd.name != "version" && cmd.name != "status" && cmd.name != "ls" &&
			!strings.Contains(cmd.help, "orphanctl "+cmd.name) {
			t.Errorf("help of %s has no example", cmd.name)
		}
	}
	stdout, _, code := runCLI(t, "--help")
	if code != exitOK || !strings.Contains(stdout, "Exit status") {
		t.Errorf("orphanctl --help: exit %d\n%s", code, stdout)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, _, code := runCLI(t, args...)
		if code != exitOK || !strings.HasPrefix(stdout, "orphanctl ") {
			t.Errorf("orphanctl %q = %q, exit %d", args, stdout, code)
		}
	}
	stdout, _, code := runCLI(t, "version", "--json")
	var v map[string]string
	if code != exitOK || json.Unmarshal([]byte(stdout), &v) != nil || v["orphanctl"] == "" {
		t.Errorf("orphanctl version --json = %q, exit %d", stdout, code)
	}
}

func TestUnreachableAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"--socket", sock, "status"},
		{"ls", "--socket", sock}, // global flags after the command
		{"--socket=" + sock, "kill", "g", "--grace", "1s"},
	} {
		stdout, stderr, code := runCLI(t, args...)
		if code != exitUnreachable {
			t.Errorf("orphanctl %q exited %d, want %d", args, code, exitUnreachable)
		}
		if !strings.Contains(stderr, "is orphand running?") || !strings.Contains(stderr, sock) {
			t.Errorf("orphanctl %q stderr does not say what to do: %s", args, stderr)
		}
		if stdout != "" {
			t.Errorf("orphanctl %q printed %q on stdout without --json", args, stdout)
		}
	}
	stdout, _, code := runCLI(t, "--json", "--socket", sock, "status")
	var resp ipc.Response
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil || resp.OK || resp.Error == nil || resp.Error.Code != "unreachable" || code != exitUnreachable {
		t.Errorf("--json status without agent: %q (exit %d), want an unreachable error object", stdout, code)
	}
}

func TestRunWithoutAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, stderr, code := runCLI(t, "--socket", sock, "run", "--", "true")
	if code != exitRunFailed || !strings.Contains(stderr, "is orphand running?") {
		t.Errorf("run without agent: exit %d, stderr %s; want %d", code, stderr, exitRunFailed)
	}
	_, _, code = runCLI(t, "--socket", sock, "run", "--", "no-such-command-orphanctl-test")
	if code != exitNotFound {
		t.Errorf("run of a missing command: exit %d, want %d", code, exitNotFound)
	}
	_, _, code = runCLI(t, "--socket", sock, "run", "--", t.TempDir())
	if code != exitCannotExec {
		t.Errorf("run of a directory: exit %d, want %d", code, exitCannotExec)
	}
	_, _, code = runCLI(t, "--socket", sock, "run")
	if code != exitRunFailed {
		t.Errorf("run without CMD: exit %d, want %d", code, exitRunFailed)
	}
	_, _, code = runCLI(t, "--socket", sock, "run", "--on", "never", "--", "true")
	if code != exitRunFailed {
		t.Errorf("run --on never: exit %d, want %d", code, exitRunFailed)
	}
}
