package pid1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Tests of what a user switching from tini or dumb-init relies on: exit
// codes, the working directory, the rewrite and escalation rules, and the
// peers' flags and environment variables. Each runs both binaries.

func TestCannotExecuteIs126NotFoundIs127(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range initBinaries(t) {
		for _, tc := range []struct {
			cmd  string
			want int
			msg  string
		}{
			{"/etc", 126, "is a directory"},
			{plain, 126, "permission denied"},
			{"/nonexistent/cmd", 127, "no such file"},
			{"no-such-command-here", 127, "not found in $PATH"},
		} {
			t.Run(b.name+" "+tc.cmd, func(t *testing.T) {
				t.Parallel()
				r := start(t, b.spec(tc.cmd))
				r.expectExit(tc.want)
				if !strings.Contains(r.stderr.String(), tc.msg) {
					t.Errorf("stderr %q does not say %q", r.stderr.String(), tc.msg)
				}
			})
		}
	}
}

// TestInitMovesToRoot: CMD starts in the caller's working directory, and
// init then leaves it for /, so that it does not keep it (or its mount)
// busy for the container's life.
func TestInitMovesToRoot(t *testing.T) {
	for _, b := range initBinaries(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sp := b.spec("--", "sh", "-c", `echo "pwd $(pwd)"; read x`)
			sp.dir = dir
			r := start(t, sp)
			if got := r.waitOutput("pwd "); got != dir {
				t.Errorf("CMD started in %s, want %s", got, dir)
			}
			cwd, err := os.Readlink("/proc/" + strconv.Itoa(r.initPid()) + "/cwd")
			if err != nil || cwd != "/" {
				t.Errorf("init's working directory is %q (%v), want /", cwd, err)
			}
			r.release()
			r.expectExit(0)
		})
	}
}

// trapAll is a CMD that reports SIGINT, SIGTERM and SIGUSR2 and exits 0 on
// SIGUSR1.
const trapAll = `trap 'echo got INT' INT; trap 'echo got TERM' TERM; trap 'echo got USR2' USR2; ` +
	`trap 'exit 0' USR1; echo ready; ` + waitLoop

// TestEscalationFollowsTheRewrite: the second-SIGINT rule looks at what is
// forwarded. With -r INT:TERM a SIGINT after a SIGTERM is a second SIGTERM,
// which never escalates; with -r TERM:INT a second SIGTERM is a second
// SIGINT, which does.
func TestEscalationFollowsTheRewrite(t *testing.T) {
	for _, b := range initBinaries(t) {
		t.Run(b.name+" INT:TERM", func(t *testing.T) {
			t.Parallel()
			sp := b.spec("-r", "INT:TERM", "--grace", "60s", "--", "sh", "-c", trapAll)
			sp.pidns = true
			r := start(t, sp)
			r.waitOutput("ready")
			r.signal(syscall.SIGTERM)
			waitCount(t, r, "got TERM", 1)
			r.signal(syscall.SIGINT) // forwarded as SIGTERM: no escalation
			waitCount(t, r, "got TERM", 2)
			r.signal(syscall.SIGUSR1)
			r.expectExit(0)
			if strings.Contains(r.stdout.String(), "got INT") || strings.Contains(r.stderr.String(), "second SIGINT") {
				t.Errorf("SIGINT was not rewritten, or escalated:\n%s\n%s", r.stdout.String(), r.stderr.String())
			}
		})
		t.Run(b.name+" TERM:INT", func(t *testing.T) {
			t.Parallel()
			sp := b.spec("-r", "TERM:INT", "--grace", "60s", "--", "sh", "-c", trapAll)
			sp.pidns = true
			r := start(t, sp)
			r.waitOutput("ready")
			r.signal(syscall.SIGTERM)
			waitCount(t, r, "got INT", 1)
			r.signal(syscall.SIGTERM) // a second SIGINT, as forwarded
			r.expectExit(128 + int(syscall.SIGKILL))
			if !strings.Contains(r.stderr.String(), "second SIGINT") {
				t.Errorf("no escalation:\n%s", r.stderr.String())
			}
		})
	}
}

// TestNoEscalateForwardsEverySIGINT pins the difference from the peers and
// the flag that removes it: with --no-escalate a second SIGINT is
// forwarded like the first.
func TestNoEscalateForwardsEverySIGINT(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	r := start(t, spec{pidns: true, binary: bin.init, args: []string{"--no-escalate", "--", "sh", "-c", trapAll}})
	r.waitOutput("ready")
	r.signal(syscall.SIGINT)
	waitCount(t, r, "got INT", 1)
	r.signal(syscall.SIGINT)
	waitCount(t, r, "got INT", 2)
	r.signal(syscall.SIGUSR1)
	r.expectExit(0)
}

// TestSIGPROFIsNotForwarded pins the signal the Go runtime keeps for
// itself: a SIGPROF sent to init never reaches CMD (docs/init.md says why).
func TestSIGPROFIsNotForwarded(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	r := start(t, spec{pidns: true, binary: bin.init, args: []string{"--", "sh", "-c", `trap 'echo got PROF' PROF; ` + trapAll}})
	r.waitOutput("ready")
	r.signal(syscall.SIGPROF)
	// Once the kernel has delivered it to init (nothing pending), anything
	// init forwarded would be on its way before what comes next.
	waitFor(t, "init to take SIGPROF", func() bool { return !pending(t, r.initPid(), syscall.SIGPROF) })
	r.signal(syscall.SIGUSR2)
	r.waitOutput("got USR2")
	r.signal(syscall.SIGUSR1)
	r.expectExit(0)
	if strings.Contains(r.stdout.String(), "got PROF") {
		t.Error("SIGPROF reached CMD: update notForwarded and docs/init.md")
	}
}

// TestWarnOnReap is tini's -w: each orphan init reaps is reported.
func TestWarnOnReap(t *testing.T) {
	for _, b := range initBinaries(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			// The orphan exits once it is one (its parent is PID 1, init);
			// CMD waits until it is gone (kill -0 succeeds on a zombie),
			// that is until init has reaped it.
			sp := b.spec("-w", "--", "sh", "-c", `p=$( (sh -c '`+untilOrphaned+`' & echo $!) ); while kill -0 $p 2>/dev/null; do sleep 0.01; done`)
			sp.pidns = true
			r := start(t, sp)
			r.expectExit(0)
			if !strings.Contains(r.stderr.String(), "reaped a zombie process") {
				t.Errorf("no warning for the orphan:\n%s", r.stderr.String())
			}
		})
	}
}

// untilOrphaned is a shell loop that returns once the shell's parent is
// PID 1.
const untilOrphaned = `while read -r l < /proc/$$/stat; set -- $l; [ "$4" != 1 ]; do sleep 0.01; done`

// TestVerbosity: tini's TINI_VERBOSITY and -v, dumb-init's -v.
func TestVerbosity(t *testing.T) {
	needBinaries(t)
	for _, tc := range []struct {
		env       []string
		args      []string
		warn, dbg bool
	}{
		{nil, nil, true, false},
		{[]string{"TINI_VERBOSITY=0"}, nil, false, false},
		{[]string{"TINI_VERBOSITY=3"}, nil, true, true},
		{nil, []string{"-v"}, true, true},
		{[]string{"TINI_VERBOSITY=0"}, []string{"--verbose"}, true, true},
	} {
		t.Run(strings.Join(append(tc.env, tc.args...), " "), func(t *testing.T) {
			t.Parallel()
			// Neither PID 1 nor a subreaper: init warns.
			r := start(t, spec{
				binary: bin.init, env: tc.env, wrap: []string{bin.helper, "nosubreaper"},
				args: append(append([]string{}, tc.args...), "--", "true"),
			})
			r.expectExit(0)
			errs := r.stderr.String()
			if got := strings.Contains(errs, "level=WARN"); got != tc.warn {
				t.Errorf("warning shown: %v, want %v:\n%s", got, tc.warn, errs)
			}
			if got := strings.Contains(errs, "level=DEBUG"); got != tc.dbg {
				t.Errorf("debug shown: %v, want %v:\n%s", got, tc.dbg, errs)
			}
		})
	}
}

// TestSubreaperRequired: tini's -s and TINI_SUBREAPER make a refused
// PR_SET_CHILD_SUBREAPER an error.
func TestSubreaperRequired(t *testing.T) {
	needBinaries(t)
	for _, tc := range []struct {
		env  []string
		args []string
	}{{nil, []string{"-s"}}, {[]string{"TINI_SUBREAPER="}, nil}} {
		t.Run(strings.Join(append(tc.env, tc.args...), " "), func(t *testing.T) {
			t.Parallel()
			r := start(t, spec{
				binary: bin.init, env: tc.env, wrap: []string{bin.helper, "nosubreaper"},
				args: append(append([]string{}, tc.args...), "--", "true"),
			})
			r.expectExit(125)
			if !strings.Contains(r.stderr.String(), "cannot become a child subreaper") {
				t.Errorf("stderr does not say why:\n%s", r.stderr.String())
			}
		})
	}
}

func TestVersionAndLicense(t *testing.T) {
	for _, b := range initBinaries(t) {
		for _, flag := range []string{"--version", "-V", "-l", "--license", "-h"} {
			out, err := exec.Command(b.path, append(append([]string{}, b.pre...), flag)...).Output()
			if err != nil {
				t.Errorf("%s %s: %v", b.name, flag, err)
				continue
			}
			want := map[string]string{"--version": b.name + " ", "-V": b.name + " ", "-l": "MIT License", "--license": "MIT License", "-h": "TINI_SUBREAPER"}[flag]
			if !strings.HasPrefix(string(out), want) && !strings.Contains(string(out), want) {
				t.Errorf("%s %s printed %q, want %q", b.name, flag, out, want)
			}
		}
	}
}

// waitCount waits until stdout has n lines equal to line.
func waitCount(t *testing.T, r *run, line string, n int) {
	t.Helper()
	waitFor(t, strconv.Itoa(n)+"x "+line, func() bool {
		return strings.Count(r.stdout.String(), line+"\n") >= n
	})
}

// pending reports whether sig waits to be delivered to pid.
func pending(t *testing.T, pid int, sig syscall.Signal) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "ShdPnd:"); ok {
			return sigMask(t, v).has(sig)
		}
	}
	return false
}
