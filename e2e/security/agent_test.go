package security

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// waitLong bounds every wait of the suite: generous, for a loaded 2-core
// machine. Nothing is asserted about how fast anything happens.
const waitLong = 2 * time.Minute

// agent is an orphand this test started.
type agent struct {
	bins     bins
	pid      int
	socket   string
	mount    string // the cgroup2 mount point
	root     string // the agent's cgroup root, relative to mount
	stateDir string
	log      *logBuffer
}

// logBuffer collects the agent's log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgent runs orphand with the cgroupfs backend under a cgroup root of
// its own and config (TOML) until the test ends; the cleanup stops it with
// SIGTERM and fails the test if it did not stop cleanly, left a cgroup, or
// logged a panic or a data race.
func startAgent(t testing.TB, config string) *agent {
	t.Helper()
	return startBinary(t, config, binaries(t).orphand)
}

// startBinary is startAgent with the orphand binary named.
func startBinary(t testing.TB, config, orphand string) *agent {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // other uids must reach the socket
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a := &agent{
		bins:     binaries(t),
		socket:   filepath.Join(dir, "orphand.sock"),
		mount:    m.Path,
		root:     "/" + cgroupPrefix + os.Getenv(markEnv) + "-" + randHex(4),
		stateDir: filepath.Join(dir, "state"),
		log:      &logBuffer{},
	}
	cfgPath := filepath.Join(dir, "orphand.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	cmd := exec.Command(orphand, "serve", "--socket", a.socket, "--backend", "cgroupfs",
		"--cgroup-root", a.root, "--config", cfgPath, "--state-dir", a.stateDir, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.LocalAddr().String())
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { a.stop(t, cmd, exited) })
	ready := make(chan error, 1)
	go func() { ready <- readyNotice(notify) }()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("orphand did not say READY=1: %v\n%s", err, a.log)
		}
	case err := <-exited:
		exited <- err
		t.Fatalf("orphand exited at start: %v\n%s", err, a.log)
	}
	return a
}

// readyNotice reads sd_notify datagrams until READY=1.
func readyNotice(c *net.UnixConn) error {
	if err := c.SetReadDeadline(time.Now().Add(waitLong)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
			return nil
		}
	}
}

func (a *agent) stop(t testing.TB, cmd *exec.Cmd, exited chan error) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-exited:
	case <-time.After(waitLong):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("no exit %v after SIGTERM: %w", waitLong, <-exited)
	}
	if err != nil {
		t.Errorf("orphand: %v", err)
	}
	log := a.log.String()
	for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
		if strings.Contains(log, bad) {
			t.Errorf("orphand's log has %q", bad)
		}
	}
	rootDir := filepath.Join(a.mount, a.root)
	if left, _ := filepath.Glob(filepath.Join(rootDir, "*", "cgroup.procs")); len(left) > 0 {
		t.Errorf("orphand left group cgroups under %s: %v", rootDir, left)
	}
	removeCgroupTree(rootDir)
	if t.Failed() {
		t.Logf("orphand's log:\n%s", log)
	}
}

// removeCgroupTree kills what is in the cgroup tree at dir and removes it,
// deepest first.
func removeCgroupTree(dir string) {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Rmdir(dirs[i]) == syscall.EBUSY && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the killed are still leaving
		}
	}
}

// status asks root's view of the agent's health.
func (a *agent) status(t testing.TB) *ipc.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := ipc.Dial(ctx, a.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// usage is what the agent process holds: open descriptors and resident
// memory.
type usage struct {
	fds    int
	rssKiB int
}

func (u usage) String() string { return fmt.Sprintf("%d fds, RSS %d KiB", u.fds, u.rssKiB) }

func (a *agent) usage(t testing.TB) usage {
	t.Helper()
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(a.pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(a.pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	u := usage{fds: len(fds)}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			u.rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	return u
}

// decode reads one JSON response line.
func decode(t testing.TB, line []byte) ipc.Response {
	t.Helper()
	var r ipc.Response
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("answer %q is not a response: %v", line, err)
	}
	return r
}

// deadline bounds a polling loop.
type deadline struct{ end time.Time }

func newDeadline() deadline { return deadline{time.Now().Add(waitLong)} }

// check fails the test once the deadline has passed, and else pauses a
// little before the next poll.
func (d deadline) check(t testing.TB, what string) {
	t.Helper()
	if time.Now().After(d.end) {
		t.Fatalf("waited %v for %s", waitLong, what)
	}
	time.Sleep(20 * time.Millisecond)
}
