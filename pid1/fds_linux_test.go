package pid1_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listFDs prints the shell's own open descriptors on one line (without the
// one the glob itself had open, gone by the time of the -e test).
const listFDs = `fds=""; for f in /proc/$$/fd/*; do [ -e "$f" ] && fds="$fds ${f##*/}"; done; echo "fds$fds"; `

func TestStrayFDsNotLeaked(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep bool
	}{
		{"by default", false},
		{"unless --keep-fds", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			args := []string{"init"}
			if tc.keep {
				args = append(args, "--keep-fds")
			}
			args = append(args, "--", "sh", "-c", listFDs+`read x`)
			r := start(t, spec{args: args, extra: []*os.File{pw}}) // fd 3 in init
			pw.Close()
			fds := strings.Fields(r.waitOutput("fds"))
			if got, want := slicesContains(fds, "3"), tc.keep; got != want {
				t.Errorf("CMD has fds %v; fd 3 wanted: %v", fds, want)
			}
			if !tc.keep {
				if len(fds) != 3 {
					t.Errorf("CMD has fds %v, want 0 1 2", fds)
				}
				// init closed its own copy too: the pipe is at EOF while CMD
				// still runs.
				readEOF(t, pr)
			}
			r.release()
			r.expectExit(0)
		})
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// readEOF fails the test unless r reaches EOF within 30 s.
func readEOF(t *testing.T, r *os.File) {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, r); err != nil || n != 0 {
		t.Fatalf("read the pipe: %d bytes, %v; want EOF", n, err)
	}
}

// TestSocketActivationPassesThrough checks that LISTEN_PID names CMD (not
// init) and that CMD has the listening socket as fd 3, as systemd or podman
// pass it to init.
func TestSocketActivationPassesThrough(t *testing.T) {
	for _, pidns := range []bool{false, true} {
		t.Run(fmt.Sprintf("pidns=%v", pidns), func(t *testing.T) {
			t.Parallel()
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			f, err := ln.File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var st syscall.Stat_t
			if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			// The service manager's part: LISTEN_PID is the pid of the
			// process it executes, init (sh exec's it, keeping its pid).
			r := start(t, spec{
				pidns: pidns,
				shell: `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec "$0" "$@"`,
				args: []string{
					"init", "--", "sh", "-c",
					`echo "env $LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES"; echo "fd3 $(readlink /proc/$$/fd/3)"; ` + listFDs,
				},
				extra: []*os.File{f},
			})
			r.expectExit(0)
			env := strings.Fields(r.waitOutput("env "))
			if len(env) != 4 || env[0] != env[1] || env[2] != "1" || env[3] != "web" {
				t.Errorf("CMD's LISTEN_PID, pid, LISTEN_FDS, LISTEN_FDNAMES = %v; want LISTEN_PID = its pid, 1, web", env)
			}
			if got, want := r.waitOutput("fd3 "), "socket:["+strconv.FormatUint(st.Ino, 10)+"]"; got != want {
				t.Errorf("CMD's fd 3 is %q, want the listener %q", got, want)
			}
			if fds := strings.Fields(r.waitOutput("fds")); len(fds) != 4 {
				t.Errorf("CMD has fds %v, want 0 1 2 3", fds)
			}
		})
	}
}

func TestParentDeathSignal(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	// outer init -> inner init --pdeathsig TERM -> CMD. Killing the outer
	// one makes the kernel send SIGTERM to the inner one, which forwards it
	// to CMD like any signal, and exits with CMD.
	//
	// The outer init is gone before CMD can answer, so the test waits for
	// the inner init's exit and then reads the output. (It once waited for
	// the output and failed as soon as it saw the outer init's exit, which
	// under load came first. CMD's trap now takes a moment before it
	// answers, so that order is the usual one here too.)
	r := start(t, spec{args: []string{
		"init", "--no-kill-remaining", "--", bin.orphand, "init", "--pdeathsig", "TERM", "--", "sh", "-c",
		`trap 'sleep 0.2; echo got TERM; exit 0' TERM; echo inner $PPID; ` + waitLoop,
	}})
	inner := openPid(t, r.waitPid("inner "))
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the inner init to exit", inner.Exited)
	// CMD wrote its line before it exited, and the inner init exits after
	// CMD: the output is complete now.
	if out := r.stdout.String(); !strings.Contains(out, "got TERM\n") {
		t.Fatalf("the inner init exited, but CMD never printed \"got TERM\"\nstdout: %s\nstderr: %s", out, r.stderr.String())
	}
}
