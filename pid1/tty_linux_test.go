package pid1_test

import (
	"bytes"
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
