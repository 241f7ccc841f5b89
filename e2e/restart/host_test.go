package restart

import (
	"bytes"
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
)

// crashFileEnv is agent.CrashFileEnv, defined only in crash-point builds.
const crashFileEnv = "ORPHAND_CRASHPOINT_FILE"

// readyTimeout bounds an agent's start on a loaded 2-core machine.
const readyTimeout = 60 * time.Second

// agentCtl runs the agent under test: on the host as the test's child, or
// in the container as systemd's orphand.service.
type agentCtl interface {
	// Arm makes the running agent SIGKILL itself at crash point name.
	Arm(t *testing.T, name string)
	// Crash SIGKILLs the running agent and waits until it is gone.
	Crash(t *testing.T)
	// WaitDown waits until the agent has died (at an armed crash point).
	WaitDown(t *testing.T)
	// Start starts the next agent and waits until it serves.
	Start(t *testing.T)
	// Restart stops the agent as a service manager does (SIGTERM) and
	// starts the next one.
	Restart(t *testing.T)
	// Stop stops the agent for good (SIGTERM).
	Stop(t *testing.T)
	Socket() string
	Backend() string
	// Log is the current agent's log (for assertions and failure reports).
	Log(t *testing.T) string
	// GroupDir is where a group's cgroup lives, given its path.
	GroupDir(path string) string
}

// hostAgent is orphand started by the test on the host: cgroupfs backend,
// a cgroup root, socket, state directory and crash-point file of its own.
type hostAgent struct {
	bin, dir, sock, state, crash, cfg string
	mount, root                       string // cgroup2 mount; the backend root, relative to it

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd is reaped
	log  *syncBuffer
	prev []string // logs of the last agents, for failure reports
}

func newHostAgent(t *testing.T) *hostAgent {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Discover()
	if err != nil || m.Path == "" {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	dir := t.TempDir()
	h := &hostAgent{
		bin: orphandBin(t), dir: dir, sock: filepath.Join(dir, "orphand.sock"),
		state: filepath.Join(dir, "state"), crash: filepath.Join(dir, "crashpoint"), cfg: filepath.Join(dir, "orphand.toml"),
		mount: m.Path, root: "/" + cgroupPrefix + os.Getenv(markEnv) + "-" + randHex(4),
	}
	if err := os.WriteFile(h.cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Stop(t)
		if t.Failed() {
			t.Logf("the last agents' logs:\n%s", strings.Join(h.prev, "\n----\n"))
		}
		removeCgroupTree(filepath.Join(h.mount, h.root))
	})
	return h
}

func (h *hostAgent) Socket() string              { return h.sock }
func (h *hostAgent) Backend() string             { return "cgroupfs" }
func (h *hostAgent) GroupDir(path string) string { return filepath.Join(h.mount, path) }

func (h *hostAgent) Log(*testing.T) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.log == nil {
		return ""
	}
	return h.log.String()
}

func (h *hostAgent) Arm(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(h.crash, []byte(name), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (h *hostAgent) Start(t *testing.T) {
	t.Helper()
	notifyPath := filepath.Join(h.dir, "notify.sock")
	_ = os.Remove(notifyPath)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	cmd := exec.Command(h.bin, "serve", "--socket", h.sock, "--backend", "cgroupfs", "--cgroup-root", h.root,
		"--config", h.cfg, "--state-dir", h.state, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath, crashFileEnv+"="+h.crash)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	h.mu.Lock()
	if h.log != nil {
		h.prev = append(h.prev, h.log.String())
		if len(h.prev) > 3 {
			h.prev = h.prev[1:]
		}
	}
	h.cmd, h.done, h.log = cmd, done, log
	h.mu.Unlock()

	ready := make(chan error, 1)
	go func() { ready <- waitReady(notify, readyTimeout) }()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("orphand did not become ready: %v\n%s", err, log)
		}
	case <-done:
		t.Fatalf("orphand exited at start: %v\n%s", cmd.ProcessState, log)
	}
}

// waitReady reads sd_notify datagrams until one says READY=1.
func waitReady(c *net.UnixConn, timeout time.Duration) error {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			if l == "READY=1" {
				return nil
			}
		}
	}
}

func (h *hostAgent) current() (*exec.Cmd, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmd, h.done
}

func (h *hostAgent) Crash(t *testing.T) {
	t.Helper()
	cmd, done := h.current()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	h.wait(t, done)
}

func (h *hostAgent) WaitDown(t *testing.T) {
	t.Helper()
	cmd, done := h.current()
	h.wait(t, done)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the agent ended with %v, not by its crash point", cmd.ProcessState)
	}
}

func (h *hostAgent) wait(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(readyTimeout):
		t.Fatalf("the agent did not end within %v\n%s", readyTimeout, h.Log(t))
	}
}

func (h *hostAgent) Restart(t *testing.T) {
	t.Helper()
	h.Stop(t)
	h.Start(t)
}

func (h *hostAgent) Stop(t *testing.T) {
	t.Helper()
	cmd, done := h.current()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if !cmd.ProcessState.Success() {
			t.Errorf("orphand stopped with %v", cmd.ProcessState)
		}
	case <-time.After(readyTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("orphand did not stop within %v of SIGTERM", readyTimeout)
	}
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

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }

// lastLine returns the last line of log containing substr.
func lastLine(log, substr string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

// restoreCount reads a count from the restore log line ("name=N").
func restoreCount(line, name string) int {
	var n int
	i := strings.Index(line, " "+name+"=")
	if i < 0 {
		return -1
	}
	if _, err := fmt.Sscanf(line[i+len(name)+2:], "%d", &n); err != nil {
		return -1
	}
	return n
}
