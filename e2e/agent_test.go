package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// agent is an orphand under test: one this test started on the host, or the
// socket-activated one of the container.
type agent struct {
	bins    binaries
	socket  string
	backend string // "cgroupfs", "systemd" or "proc"
	mount   string // the cgroup2 mount point
	root    string // cgroupfs: the agent's cgroup root, relative to mount
	log     *syncBuffer
	pid     int
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agentReadyTimeout bounds an agent's start (a loaded 2-core machine).
const agentReadyTimeout = 60 * time.Second

// startAgent starts orphand on the host: cgroupfs backend, a cgroup root of
// its own, a socket in a directory every uid can reach, the configuration
// given (TOML). The test's cleanup stops it and fails the test if it left a
// group's cgroup behind or did not stop cleanly.
func startAgent(t testing.TB, config string) *agent {
	t.Helper()
	return startAgentWith(t, config, "cgroupfs")
}

// startAgentWith is startAgent with the backend named.
func startAgentWith(t testing.TB, config, backend string) *agent {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	b := bins(t)
	dir := reachableTempDir(t)
	a := &agent{
		bins:    b,
		socket:  filepath.Join(dir, "orphand.sock"),
		backend: backend,
		mount:   m.Path,
		root:    "/" + runCgroupPrefix + randHex(4),
		log:     &syncBuffer{},
	}
	cfgPath := filepath.Join(dir, "orphand.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// A stand-in for systemd's notification socket, for the agent's whole
	// life: READY=1 says it serves, and the fd store path (FDSTORE=1
	// messages with pidfds) runs as under systemd. The fds sent are
	// discarded by the kernel, since they are read without ancillary data.
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	notes := make(chan string, 16)
	drained := make(chan struct{})
	go drainNotify(notify, notes, drained)
	t.Cleanup(func() { notify.Close(); <-drained })

	cmd := exec.Command(b.orphand, "serve", "--socket", a.socket, "--backend", backend,
		"--cgroup-root", a.root, "--config", cfgPath, "--state-dir", filepath.Join(dir, "state"), "--log-level", "debug")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.LocalAddr().String())
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { a.stop(t, cmd, exited) })

	timeout := time.After(agentReadyTimeout)
	for {
		select {
		case note := <-notes:
			if note == "READY=1" {
				return a
			}
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("orphand exited at start: %v\n%s", err, a.log)
		case <-timeout:
			t.Fatalf("orphand did not say READY=1 within %v\n%s", agentReadyTimeout, a.log)
		}
	}
}

// drainNotify reads sd_notify datagrams until the socket is closed, and
// passes their lines on to notes while there is room.
func drainNotify(c *net.UnixConn, notes chan<- string, done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			select {
			case notes <- l:
			default:
			}
		}
	}
}

// stop ends the agent with SIGTERM, as systemd would, and checks what it
// left: nothing under its cgroup root (every test ends its groups).
func (a *agent) stop(t testing.TB, cmd *exec.Cmd, exited chan error) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("did not stop within 30s of SIGTERM: %w", <-exited)
	}
	if err != nil {
		t.Errorf("orphand: %v", err)
	}
	rootDir := filepath.Join(a.mount, a.root)
	if left, _ := filepath.Glob(filepath.Join(rootDir, "*", "cgroup.procs")); len(left) > 0 {
		t.Errorf("orphand left %d group cgroups under %s: %v", len(left), rootDir, left)
	}
	removeCgroupTree(rootDir)
	if t.Failed() {
		t.Logf("orphand's log:\n%s", a.log)
	}
}

// reachableTempDir is a t.TempDir that other uids may enter (the test runs
// orphanctl as nobody too).
func reachableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// client dials the agent with the Go client.
func (a *agent) client(t testing.TB) *ipc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ipc.Dial(ctx, a.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int // exit status, or 128+signal
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// ctl runs orphanctl against the agent.
func (a *agent) ctl(t testing.TB, args ...string) result {
	t.Helper()
	return a.run(t, nil, append([]string{a.bins.orphanctl}, args...)...)
}

// ctlAs runs orphanctl as another uid (and gid), through setpriv.
func (a *agent) ctlAs(t testing.TB, uid int, args ...string) result {
	t.Helper()
	return a.run(t, nil, append(asUID(t, uid), append([]string{a.bins.orphanctl}, args...)...)...)
}

// asUID is the command prefix that runs a command as uid, with no groups.
func asUID(t testing.TB, uid int) []string {
	t.Helper()
	setpriv := testutil.RequireCommand(t, "setpriv")
	return []string{setpriv, fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups", "--"}
}

// run runs argv with ORPHAND_SOCKET pointing at the agent and stdin from
// stdin, and waits for it (a minute at most).
func (a *agent) run(t testing.TB, stdin []byte, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), ipc.SocketEnv+"="+a.socket)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), code: exitCode(cmd.ProcessState)}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return r
}

// exitCode is the shell's view of how a process ended.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// cgroupDir is where a group's cgroup lives on this host.
func (a *agent) cgroupDir(g *ipc.Group) string {
	return filepath.Join(a.mount, g.Cgroup)
}
