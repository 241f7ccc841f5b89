package restart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/e2e/internal/harness"
)

// crashFileEnv is the agent's crashpoint.FileEnv (agent/internal/crashpoint),
// defined only in crash-point builds and out of this package's reach.
const crashFileEnv = "ORPHAND_CRASHPOINT_FILE"

// readyTimeout bounds an agent's start on a loaded 2-core machine.
const readyTimeout = 60 * time.Second

// agentCtl runs the agent under test: on the host as the test's child, or
// in the container as systemd's orphand.service.
type agentCtl interface {
	// Arm makes the running agent SIGKILL itself at crash point name,
	// which may be followed by a space and a group's id: then only at
	// that group's pass through the point.
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
	bin   string
	host  *harness.Host
	crash string // the crash-point file

	mu   sync.Mutex
	d    *harness.Daemon // the current agent
	prev []string        // logs of the last agents, for failure reports
}

func newHostAgent(t *testing.T) *hostAgent {
	t.Helper()
	host := run.NewHost(t, "")
	h := &hostAgent{bin: orphandBin(t), host: host, crash: filepath.Join(host.Dir, "crashpoint")}
	t.Cleanup(func() { // after every agent's stop
		if t.Failed() {
			t.Logf("the last agents' logs:\n%s", strings.Join(h.prev, "\n----\n"))
		}
	})
	return h
}

func (h *hostAgent) Socket() string              { return h.host.Socket }
func (h *hostAgent) Backend() string             { return "cgroupfs" }
func (h *hostAgent) GroupDir(path string) string { return h.host.GroupDir(path) }

func (h *hostAgent) Log(*testing.T) string {
	d := h.current()
	if d == nil {
		return ""
	}
	return d.Log.String()
}

func (h *hostAgent) Arm(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(h.crash, []byte(name), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (h *hostAgent) Start(t *testing.T) {
	t.Helper()
	d := h.host.Start(t, harness.Serve{Bin: h.bin, Backend: "cgroupfs", Env: []string{crashFileEnv + "=" + h.crash}})
	t.Cleanup(func() { h.stop(t, d) })
	h.mu.Lock()
	if h.d != nil {
		h.prev = append(h.prev, h.d.Log.String())
		if len(h.prev) > 3 {
			h.prev = h.prev[1:]
		}
	}
	h.d = d
	h.mu.Unlock()
	if err := d.WaitReady(readyTimeout); err != nil {
		t.Fatalf("%v\n%s", err, d.Log)
	}
}

func (h *hostAgent) current() *harness.Daemon {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.d
}

func (h *hostAgent) Crash(t *testing.T) {
	t.Helper()
	d := h.current()
	_ = d.Cmd.Process.Signal(syscall.SIGKILL)
	h.wait(t, d)
}

func (h *hostAgent) WaitDown(t *testing.T) {
	t.Helper()
	d := h.current()
	h.wait(t, d)
	if ws, ok := d.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the agent ended with %v, not by its crash point", d.Cmd.ProcessState)
	}
}

func (h *hostAgent) wait(t *testing.T, d *harness.Daemon) {
	t.Helper()
	select {
	case <-d.Done():
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
	if d := h.current(); d != nil {
		h.stop(t, d)
	}
}

// stop stops d with SIGTERM, unless it has ended already (crashed), and
// fails the test if it did not stop cleanly.
func (h *hostAgent) stop(t *testing.T, d *harness.Daemon) {
	t.Helper()
	select {
	case <-d.Done():
		return
	default:
	}
	if err := d.Stop(readyTimeout); err != nil {
		t.Errorf("orphand: %v", err)
	}
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
