package cli

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/pid1"
)

// TestPeerFlags checks that every flag of tini and dumb-init is accepted
// with the meaning it has there, alone and grouped as getopt allows.
func TestPeerFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		check func(o options) bool
	}{
		// tini
		{[]string{"-s", "--", "x"}, func(o options) bool { return o.cfg.Subreaper }},
		{[]string{"-g", "x"}, func(o options) bool { return o.cfg.SignalGroup && !o.cfg.Setsid }},
		{[]string{"-p", "SIGKILL", "x"}, func(o options) bool { return o.cfg.ParentDeathSignal == syscall.SIGKILL }},
		{[]string{"-pSIGTERM", "x"}, func(o options) bool { return o.cfg.ParentDeathSignal == syscall.SIGTERM }},
		{[]string{"-e", "143", "-e3", "x"}, func(o options) bool { return reflect.DeepEqual(o.cfg.ExpectedCodes, []int{143, 3}) }},
		{[]string{"-w", "x"}, func(o options) bool { return o.cfg.WarnOnReap }},
		{[]string{"-v", "x"}, func(o options) bool { return o.level == slog.LevelDebug }},
		{[]string{"-vvv", "x"}, func(o options) bool { return o.level == slog.LevelDebug }},
		{[]string{"-l"}, func(o options) bool { return o.action == actLicense }},
		{[]string{"--version"}, func(o options) bool { return o.action == actVersion }},
		{[]string{"-h"}, func(o options) bool { return o.action == actHelp }},
		{[]string{"-sgw", "-e", "2", "x"}, func(o options) bool {
			return o.cfg.Subreaper && o.cfg.SignalGroup && o.cfg.WarnOnReap && reflect.DeepEqual(o.cfg.ExpectedCodes, []int{2})
		}},
		// dumb-init
		{[]string{"-c", "x"}, func(o options) bool { return !o.cfg.Setsid && !o.cfg.SignalGroup }},
		{[]string{"--single-child", "x"}, func(o options) bool { return !o.cfg.Setsid && !o.cfg.SignalGroup }},
		{[]string{"-r", "15:10", "--rewrite", "2:0", "x"}, func(o options) bool {
			return reflect.DeepEqual(o.cfg.Rewrite, map[syscall.Signal]syscall.Signal{syscall.SIGTERM: syscall.SIGUSR1, syscall.SIGINT: 0})
		}},
		{[]string{"-r15:3", "x"}, func(o options) bool { return o.cfg.Rewrite[syscall.SIGTERM] == syscall.SIGQUIT }},
		{[]string{"--verbose", "x"}, func(o options) bool { return o.level == slog.LevelDebug }},
		{[]string{"-V"}, func(o options) bool { return o.action == actVersion }},
		{[]string{"--help"}, func(o options) bool { return o.action == actHelp }},
		// orphand's own
		{[]string{"--setsid", "x"}, func(o options) bool { return o.cfg.Setsid }},
		{[]string{"--kill-signal", "INT", "--grace=500ms", "x"}, func(o options) bool {
			return o.cfg.KillSignal == syscall.SIGINT && o.cfg.Grace == 500*time.Millisecond
		}},
		{[]string{"--grace", "0", "x"}, func(o options) bool { return o.cfg.Grace < 0 }},
		{[]string{"x"}, func(o options) bool { return o.cfg.Grace == pid1.DefaultGrace && o.level == slog.LevelWarn }},
		{[]string{"--no-kill-remaining", "--no-escalate", "--keep-fds", "x"}, func(o options) bool {
			return o.cfg.NoKillRemaining && o.cfg.NoEscalate && o.cfg.KeepFDs
		}},
		{[]string{"--cgroup", "x"}, func(o options) bool { return o.cfg.Cgroup == pid1.CgroupOn }},
		{[]string{"--no-cgroup", "x"}, func(o options) bool { return o.cfg.Cgroup == pid1.CgroupOff }},
		{[]string{"--pdeathsig=RTMIN+3", "x"}, func(o options) bool { return o.cfg.ParentDeathSignal == 37 }},
	} {
		o, err := parse(tc.args, nil)
		if err != nil || !tc.check(o) {
			t.Errorf("parse(%q) = %+v, %v", tc.args, o, err)
		}
	}
}

// TestCMDStartsAtTheFirstNonFlag: like getopt with "+", parsing stops at
// CMD, so CMD's own flags stay CMD's.
func TestCMDStartsAtTheFirstNonFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-s", "python3", "-u", "app.py"}, []string{"python3", "-u", "app.py"}},
		{[]string{"--", "-weird", "-s"}, []string{"-weird", "-s"}},
		{[]string{"-g", "--", "--", "x"}, []string{"--", "x"}},
		{[]string{"-", "x"}, []string{"-", "x"}},
	} {
		o, err := parse(tc.args, nil)
		if err != nil || !reflect.DeepEqual(o.cfg.Args, tc.want) {
			t.Errorf("parse(%q): CMD %q, %v; want %q", tc.args, o.cfg.Args, err, tc.want)
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "no command given"},
		{[]string{"-s"}, "no command given"},
		{[]string{"-x", "cmd"}, "unknown flag -x"},
		{[]string{"--nonsense", "cmd"}, "unknown flag --nonsense"},
		{[]string{"-e"}, "needs a value"},
		{[]string{"--grace"}, "needs a value"},
		{[]string{"-e", "256", "x"}, "0..255"},
		{[]string{"-r", "TERM", "x"}, "want FROM:TO"},
		{[]string{"-r", "CHLD:TERM", "x"}, "never forwarded"},
		{[]string{"-r", "PROF:TERM", "x"}, "never forwarded"},
		{[]string{"-p", "NOPE", "x"}, "unknown signal"},
		{[]string{"--grace", "-1s", "x"}, "must not be negative"},
		{[]string{"--grace", "soon", "x"}, "want a duration"},
		{[]string{"--setsid=1", "x"}, "takes no value"},
	} {
		_, err := parse(tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("parse(%q) = %v, want an error saying %q", tc.args, err, tc.msg)
		}
	}
	if _, err := parse(nil, nil); !errors.Is(err, pid1.ErrNoCommand) {
		t.Errorf("no command: %v, want ErrNoCommand", err)
	}
}

// TestPeerEnvironment checks tini's and dumb-init's environment variables,
// and that the command line wins.
func TestPeerEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env   []string
		args  []string
		check func(o options) bool
	}{
		{[]string{"TINI_SUBREAPER="}, nil, func(o options) bool { return o.cfg.Subreaper }}, // set at all
		{[]string{"TINI_SUBREAPER=1"}, nil, func(o options) bool { return o.cfg.Subreaper }},
		{[]string{"TINI_KILL_PROCESS_GROUP=1"}, nil, func(o options) bool { return o.cfg.SignalGroup }},
		{[]string{"TINI_VERBOSITY=0"}, nil, func(o options) bool { return o.level == slog.LevelError }},
		{[]string{"TINI_VERBOSITY=1"}, nil, func(o options) bool { return o.level == slog.LevelWarn }},
		{[]string{"TINI_VERBOSITY=2"}, nil, func(o options) bool { return o.level == slog.LevelInfo }},
		{[]string{"TINI_VERBOSITY=3"}, nil, func(o options) bool { return o.level == slog.LevelDebug }},
		{[]string{"TINI_VERBOSITY=junk"}, nil, func(o options) bool { return o.level == slog.LevelError }}, // tini's atoi
		{[]string{"TINI_VERBOSITY=0"}, []string{"-v"}, func(o options) bool { return o.level == slog.LevelDebug }},
		{[]string{"DUMB_INIT_SETSID=1"}, nil, func(o options) bool { return o.cfg.Setsid && o.cfg.SignalGroup }},
		{[]string{"DUMB_INIT_SETSID=0"}, nil, func(o options) bool { return !o.cfg.Setsid && !o.cfg.SignalGroup }},
		{[]string{"DUMB_INIT_SETSID=1"}, []string{"-c"}, func(o options) bool { return !o.cfg.Setsid && !o.cfg.SignalGroup }},
		{[]string{"OTHER=1"}, nil, func(o options) bool { return !o.cfg.Subreaper && !o.cfg.SignalGroup && !o.cfg.Setsid }},
	} {
		o, err := parse(append(tc.args, "x"), tc.env)
		if err != nil || !tc.check(o) {
			t.Errorf("parse with %q %q = %+v, %v", tc.env, tc.args, o, err)
		}
	}
}

func TestMainPrintsWithoutRunning(t *testing.T) {
	p := Program{Name: "orphand-init"}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--version"}, 0, "orphand-init "},
		{[]string{"-V"}, 0, "orphand-init "},
		{[]string{"-l"}, 0, "MIT License"},
		{[]string{"--help"}, 0, "Usage: orphand-init [flags]"},
		{[]string{"--bogus"}, pid1.ExitInitFailed, "run orphand-init --help"},
		{nil, pid1.ExitInitFailed, "no command given"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(p, tc.args, nil, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("Main(%q) = %d, %q %q; want %d and %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out)
		}
	}
}

// TestLicenseIsTheProjects: -l prints the LICENSE file, word for word.
func TestLicenseIsTheProjects(t *testing.T) {
	b, err := os.ReadFile("../../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != license {
		t.Error("the license -l prints differs from LICENSE: update pid1/cli/license.go")
	}
}

// TestHelpNamesEveryFlag keeps --help and the flag table together.
func TestHelpNamesEveryFlag(t *testing.T) {
	for _, f := range flags {
		if f.long != "" && !strings.Contains(help, "--"+f.long) {
			t.Errorf("--help does not mention --%s", f.long)
		}
		if f.short != 0 && !strings.Contains(help, "-"+string(f.short)+",") {
			t.Errorf("--help does not mention -%c", f.short)
		}
	}
	for _, v := range []string{envTiniSubreaper, envTiniKillGroup, envTiniVerbosity, envDumbInitSetsid} {
		if !strings.Contains(help, v) {
			t.Errorf("--help does not mention %s", v)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"-sg -- x", "-e143 -r15:0 x", "--grace=1s -vvv x", "-p", "--", "-c -V"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		o, err := parse(strings.Fields(line), nil)
		if err != nil || o.action != actRun {
			return
		}
		if len(o.cfg.Args) == 0 {
			t.Fatalf("parse(%q) accepted no command", line)
		}
		if err := o.cfg.Validate(); err != nil {
			t.Fatalf("parse(%q) gave a configuration pid1 refuses: %v", line, err)
		}
	})
}
