package pid1_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/testutil"
)

// openPty returns a new pseudo-terminal's master and slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.Skipf(t, "no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestTerminalGoesToCMD runs init as the leader of a session whose
// controlling terminal is a pty, as in `docker run -t`, and checks who owns
// the terminal: CMD's process group by default (init makes it the
// foreground group), and CMD's own session with --setsid (init gives the
// terminal up first).
func TestTerminalGoesToCMD(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  []string
		setsid bool
	}{
		{"foreground process group", nil, false},
		{"own session with --setsid", []string{"--setsid"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			needBinaries(t)
			cg := newTestCgroup(t)
			dir, err := cg.fs.OpenDir(cg.rel)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			master, slave := openPty(t)
			// Fields 1, 5, 6, 8 of stat: pid, pgrp, session, and the
			// terminal's foreground process group.
			args := append(append([]string{"init"}, tc.flags...), "--", "sh", "-c",
				`read -r l < /proc/$$/stat; set -- $l; echo "tty pid=$1 pgrp=$5 sid=$6 tpgid=$8"`)
			cmd := exec.Command(bin.orphand, args...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, UseCgroupFD: true, CgroupFD: int(dir.Fd())}
			var out bytes.Buffer
			var mu sync.Mutex
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				buf := make([]byte, 4096)
				for {
					n, err := master.Read(buf)
					mu.Lock()
					out.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return // EIO once the last slave is closed
					}
				}
			}()
			if err := cmd.Run(); err != nil {
				t.Fatalf("orphand init on a terminal: %v", err)
			}
			slave.Close()
			<-copied
			mu.Lock()
			text := out.String()
			mu.Unlock()
			i := strings.Index(text, "tty ")
			if i < 0 {
				t.Fatalf("no report from CMD:\n%s", text)
			}
			f := map[string]string{}
			for _, kv := range strings.Fields(strings.SplitN(text[i+4:], "\n", 2)[0]) {
				k, v, _ := strings.Cut(kv, "=")
				f[k] = strings.TrimSpace(v)
			}
			initPid := strconv.Itoa(cmd.Process.Pid)
			if f["pgrp"] != f["pid"] {
				t.Errorf("CMD is not in a process group of its own: %v", f)
			}
			if f["tpgid"] != f["pgrp"] {
				t.Errorf("the terminal's foreground group is %s, not CMD's %s: %v", f["tpgid"], f["pgrp"], f)
			}
			if wantSid := map[bool]string{false: initPid, true: f["pid"]}[tc.setsid]; f["sid"] != wantSid {
				t.Errorf("CMD's session is %s, want %s (init is %s): %v", f["sid"], wantSid, initPid, f)
			}
		})
	}
}

// TestTerminalInterruptReachesCMDOnce: ^C typed on the terminal (init is
// the session leader, as PID 1 of `docker run -t` is) goes to the terminal's
// foreground process group, CMD's: CMD gets each ^C once, and init none —
// else it would forward it too, and two of them would escalate. The
// default (tini's way) and dumb-init's setsid mode.
func TestTerminalInterruptReachesCMDOnce(t *testing.T) {
	for _, env := range []string{"", "DUMB_INIT_SETSID=1"} {
		t.Run("env "+env, func(t *testing.T) {
			t.Parallel()
			needBinaries(t)
			cg := newTestCgroup(t)
			dir, err := cg.fs.OpenDir(cg.rel)
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			master, slave := openPty(t)
			cmd := exec.Command(bin.init, "--", "sh", "-c",
				`trap 'echo got INT' INT; echo ready; while :; do read -r l; [ "$l" = quit ] && exit 0; done`)
			cmd.Env = append(os.Environ(), env)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, UseCgroupFD: true, CgroupFD: int(dir.Fd())}
			var out testutil.SyncBuffer
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				buf := make([]byte, 4096)
				for {
					n, err := master.Read(buf)
					_, _ = out.Write(buf[:n])
					if err != nil {
						return // EIO once the last slave is closed
					}
				}
			}()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
				slave.Close()
				<-copied
			})
			waitFor(t, "ready", func() bool { return strings.Contains(out.String(), "ready") })
			for i := 1; i <= 2; i++ {
				if _, err := master.Write([]byte{0x03}); err != nil { // ^C
					t.Fatal(err)
				}
				waitFor(t, fmt.Sprintf("got INT x%d", i), func() bool { return strings.Count(out.String(), "got INT") >= i })
			}
			if _, err := master.Write([]byte("quit\n")); err != nil {
				t.Fatal(err)
			}
			err = <-done
			done <- err // for the cleanup
			if err != nil {
				t.Fatalf("init: %v (CMD killed by an escalation?)\n%s", err, out.String())
			}
			if n := strings.Count(out.String(), "got INT"); n != 2 {
				t.Errorf("CMD got %d SIGINTs for 2 ^C:\n%s", n, out.String())
			}
		})
	}
}
