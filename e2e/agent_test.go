package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/e2e/internal/harness"
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
	log     *testutil.SyncBuffer
	pid     int
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
	h := run.NewHost(t, config)
	b := bins(t)
	// The stand-in for systemd's notification socket is kept for the
	// agent's whole life, so that the fd store path (FDSTORE=1 messages
	// with pidfds) runs as under systemd.
	d := h.Start(t, harness.Serve{Bin: b.orphand, Backend: backend, KeepNotify: true})
	a := &agent{bins: b, socket: h.Socket, backend: backend, mount: h.Mount, root: h.Root, log: d.Log, pid: d.Pid()}
	t.Cleanup(func() { a.stop(t, h, d) })
	if err := d.WaitReady(agentReadyTimeout); err != nil {
		t.Fatalf("%v\n%s", err, a.log)
	}
	return a
}

// stop ends the agent with SIGTERM, as systemd would, and checks what it
// left: nothing under its cgroup root (every test ends its groups). The
// host's cleanup then removes the root.
func (a *agent) stop(t testing.TB, h *harness.Host, d *harness.Daemon) {
	t.Helper()
	if err := d.Stop(30 * time.Second); err != nil {
		t.Errorf("orphand: %v", err)
	}
	if left := h.LeftGroups(); len(left) > 0 {
		t.Errorf("orphand left %d group cgroups under %s: %v", len(left), h.RootDir(), left)
	}
	if t.Failed() {
		t.Logf("orphand's log:\n%s", a.log)
	}
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
