package pid1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// waitLoop keeps a shell alive, running its traps as signals come.
const waitLoop = `while :; do sleep 1 & wait $!; done`

func TestExitCodesPropagate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		cmd   string
		want  int
	}{
		{"zero", nil, "exit 0", 0},
		{"three", nil, "exit 3", 3},
		{"killed by SIGTERM", nil, "kill -TERM $$", 128 + 15},
		{"killed by SIGKILL", nil, "kill -KILL $$", 128 + 9},
		{"expected code", []string{"-e", "3"}, "exit 3", 0},
		{"expected codes repeat", []string{"-e", "4", "--expect-exit", "143"}, "kill -TERM $$", 0},
		{"unexpected code", []string{"-e", "4"}, "exit 3", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"init"}, tc.flags...), "--", "sh", "-c", tc.cmd)
			start(t, spec{args: args, pidns: true}).expectExit(tc.want)
		})
	}
}

func TestInitsOwnFailures(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no command", []string{"init"}, 125, "no command given"},
		{"bad flag", []string{"init", "--nonsense", "--", "true"}, 125, "run orphand init --help"},
		{"bad rewrite", []string{"init", "-r", "TERM", "--", "true"}, 125, "want FROM:TO"},
		{"bad code", []string{"init", "-e", "256", "--", "true"}, 125, "0..255"},
		{"not found", []string{"init", "--", "/nonexistent/cmd"}, 127, "no such file"},
		{"not in PATH", []string{"init", "--", "no-such-command-here"}, 127, "not found in $PATH"},
		{"not executable", []string{"init", "--", plain}, 126, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, spec{args: tc.args})
			r.expectExit(tc.want)
			if !strings.Contains(r.stderr.String(), tc.msg) {
				t.Errorf("stderr %q does not say %q", r.stderr.String(), tc.msg)
			}
		})
	}
}

func TestRefusesAForeignProc(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	// A new pid namespace without its own /proc: the tree walks would read
	// the host's processes.
	unshare := testutil.RequireCommand(t, "unshare")
	r := start(t, spec{wrap: []string{unshare, "--pid", "--fork"}, args: []string{"init", "--", "true"}})
	r.expectExit(125)
	if !strings.Contains(r.stderr.String(), "/proc belongs to another pid namespace") {
		t.Errorf("stderr does not say why: %s", r.stderr.String())
	}
}

func TestHelp(t *testing.T) {
	needBinaries(t)
	out, err := exec.Command(bin.orphand, "init", "--help").Output()
	if err != nil {
		t.Fatalf("orphand init --help: %v", err)
	}
	for _, want := range []string{"--grace", "--rewrite", "--no-kill-remaining", "Exit status", "second SIGINT"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("help does not mention %q", want)
		}
	}
}

func TestSIGTERMReachesCMD(t *testing.T) {
	t.Parallel()
	r := start(t, spec{pidns: true, args: []string{
		"init", "--", "sh", "-c",
		`trap 'echo got TERM; exit 0' TERM; echo ready; ` + waitLoop,
	}})
	r.waitOutput("ready")
	r.signal(syscall.SIGTERM)
	r.expectExit(0)
	r.waitOutput("got TERM")
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	r := start(t, spec{pidns: true, args: []string{
		"init", "-r", "TERM:USR1", "--rewrite", "USR2:0", "--", "sh", "-c",
		`trap 'echo got USR1; exit 0' USR1; trap 'echo got TERM; exit 1' TERM; trap 'echo got USR2' USR2; trap 'echo got HUP' HUP; echo ready; ` + waitLoop,
	}})
	r.waitOutput("ready")
	r.signal(syscall.SIGUSR2) // dropped
	r.signal(syscall.SIGHUP)  // not rewritten: forwarded as it is
	r.waitOutput("got HUP")
	r.signal(syscall.SIGTERM) // forwarded as SIGUSR1
	r.expectExit(0)
	out := r.stdout.String()
	if !strings.Contains(out, "got USR1") || strings.Contains(out, "got TERM") || strings.Contains(out, "got USR2") {
		t.Fatalf("CMD saw the wrong signals:\n%s", out)
	}
}

func TestSignalGroup(t *testing.T) {
	t.Parallel()
	// CMD's child stays in CMD's process group; with -g it gets the signal
	// too. CMD waits for it to report. CMD sets its trap before it starts
	// the child: "child ready" must mean both are ready (the other way
	// round, a loaded machine let the signal in first, and CMD died of it).
	r := start(t, spec{pidns: true, args: []string{
		"init", "-g", "--", "sh", "-c",
		`trap 'echo cmd got USR1' USR1; ` +
			`sh -c 'trap "echo child got USR1; exit 0" USR1; echo child ready; ` + waitLoop + `' & ` +
			`while :; do wait; [ $? -le 128 ] && break; done`,
	}})
	r.waitOutput("child ready")
	r.signal(syscall.SIGUSR1)
	r.expectExit(0)
	r.waitOutput("cmd got USR1")
	r.waitOutput("child got USR1")
}

// statFields reads pid, pgrp and session of the shell itself.
const statFields = `read -r line < /proc/$$/stat; set -- $line; echo "pid=$1 pgrp=$5 sid=$6"`

func TestProcessGroupAndSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  []string
		setsid bool
	}{
		{"own process group", nil, false},
		{"own session", []string{"--setsid"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"init"}, tc.flags...), "--", "sh", "-c", statFields)
			r := start(t, spec{args: args})
			r.expectExit(0)
			f := strings.Fields(r.waitOutput("pid="))
			pid, pgrp, sid := f[0], strings.TrimPrefix(f[1], "pgrp="), strings.TrimPrefix(f[2], "sid=")
			if pgrp != pid {
				t.Errorf("CMD %s is in process group %s, not its own", pid, pgrp)
			}
			if (sid == pid) != tc.setsid {
				t.Errorf("CMD %s has session %s; own session wanted: %v", pid, sid, tc.setsid)
			}
		})
	}
}

func TestSecondSIGINTEscalates(t *testing.T) {
	t.Parallel()
	// CMD shrugs SIGINT and SIGTERM off; so does a daemon it leaves. With a
	// grace of a minute, only the escalation can end this quickly.
	r := start(t, spec{pidns: true, args: []string{
		"init", "--grace", "60s", "--", "sh", "-c",
		`setsid sh -c 'trap "" INT TERM; echo daemon $$; exec sleep 1000' & ` +
			`trap 'echo got INT' INT; trap 'echo got TERM' TERM; echo ready; ` + waitLoop,
	}})
	daemon := r.hostPid(r.waitPid("daemon "))
	d := openPid(t, daemon)
	r.waitOutput("ready")
	r.signal(syscall.SIGINT)
	r.waitOutput("got INT") // the first one is forwarded
	r.signal(syscall.SIGINT)
	r.expectExit(128 + 9) // CMD was SIGKILLed
	if !d.Exited() {
		t.Errorf("daemon %d outlived init", daemon)
	}
	if !strings.Contains(r.stderr.String(), "second SIGINT") {
		t.Errorf("init did not say why it escalated: %s", r.stderr.String())
	}
}

func TestSIGINTEndsTheGrace(t *testing.T) {
	t.Parallel()
	// CMD exits at once, leaving a daemon that ignores SIGTERM: init waits
	// for the grace (a minute) until a SIGINT cuts it short.
	r := start(t, spec{pidns: true, args: []string{
		"init", "--grace", "60s", "-v", "--", "sh", "-c",
		`setsid sh -c 'trap "" TERM; echo daemon $$; exec sleep 1000' & read x; exit 5`,
	}})
	d := openPid(t, r.hostPid(r.waitPid("daemon ")))
	r.release()
	waitFor(t, "init to signal the remaining descendants", func() bool {
		return strings.Contains(r.stderr.String(), "signalling the remaining descendants")
	})
	r.signal(syscall.SIGINT)
	r.expectExit(5)
	if !d.Exited() {
		t.Errorf("daemon outlived init")
	}
}
