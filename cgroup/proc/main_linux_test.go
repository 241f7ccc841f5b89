package proc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// The tests run every workload inside a cgroup of its own (cgtest.Dir):
// not for the backend, which uses none, but as the oracle of what escaped
// it and as the safety net that kills whatever did when a test ends.

func TestMain(m *testing.M) {
	cgtest.RegisterHelper("gated-tree", helperGatedTree)
	cgtest.RegisterHelper("pid-reuse", helperPidReuse)
	cgtest.RegisterHelper("exec-from-thread", helperExecFromThread)
	cgtest.Main(m, "orphand-test-proc")
}

// mode is one way of following forks.
type mode struct {
	name string
	cfg  proc.Config
}

var modes = []mode{
	{"connector", proc.Config{}},
	{"fallback", proc.Config{NoConnector: true}},
}

// forEachMode runs f once per mode, with a backend opened in that mode.
func forEachMode(t *testing.T, f func(t *testing.T, b *proc.Backend, m mode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f(t, openBackend(t, m.cfg), m)
		})
	}
}

// openBackend opens a backend for the test and closes it when it ends. As
// root in the initial namespaces the proc connector must work (CI runs
// there): a default config that falls back is a failure.
func openBackend(t *testing.T, cfg proc.Config) *proc.Backend {
	t.Helper()
	testutil.RequireRoot(t)
	if cgtest.Mount() == "" {
		testutil.Skipf(t, "no cgroup2 mount (the tests use cgroups as their oracle and safety net)")
	}
	b, err := proc.Open(ctx(t, 30*time.Second), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	want := proc.TrackConnector
	if cfg.NoConnector {
		want = proc.TrackRescan
	}
	if b.Tracking() != want {
		t.Fatalf("Tracking = %q, want %q", b.Tracking(), want)
	}
	return b
}

func ctx(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// workload is a process started by the test inside a test cgroup, with
// pipes to its stdin and stdout.
type workload struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	rel string // its cgroup, relative to the mount
}

// start runs cmd inside a fresh test cgroup (or rel, if not empty). When
// the test ends, everything in that cgroup is killed and cmd reaped.
func start(t *testing.T, rel string, cmd *exec.Cmd) *workload {
	t.Helper()
	if rel == "" {
		rel = cgtest.Dir(t)
	}
	dir, err := os.Open(filepath.Join(cgtest.Mount(), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		if err := cgtest.KillAll(cgtest.Mount(), rel); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &workload{cmd: cmd, in: in, out: bufio.NewReader(out), rel: rel}
}

// shell starts sh -c script as a workload.
func shell(t *testing.T, rel, script string) *workload {
	t.Helper()
	return start(t, rel, exec.Command("/bin/sh", "-c", script))
}

func (w *workload) pid() int { return w.cmd.Process.Pid }

// release writes a line to the workload's stdin (scripts wait on `read`).
func (w *workload) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(w.in, "go\n"); err != nil {
		t.Fatalf("release the workload: %v", err)
	}
}

// pids reads n lines of pids from the workload's stdout.
func (w *workload) pids(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for range n {
		line, err := w.out.ReadString('\n')
		if err != nil {
			t.Fatalf("reading pids from the workload: %v (got %v)", err, out)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			t.Fatalf("workload printed %q, not a pid", line)
		}
		out = append(out, pid)
	}
	return out
}

// expect reads one line and checks it.
func (w *workload) expect(t *testing.T, want string) {
	t.Helper()
	line, err := w.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != want {
		t.Fatalf("workload said %q (%v), want %q", line, err, want)
	}
}

// procs lists the live processes of the test cgroup rel: the oracle.
func procs(t *testing.T, rel string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cgtest.Mount(), rel, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// hold opens pidfds on the pids still running, closed when the test ends.
func hold(t *testing.T, pids []int) []*proctree.Process {
	t.Helper()
	var ps []*proctree.Process
	for _, pid := range pids {
		p, err := proctree.Open(pid)
		if errors.Is(err, os.ErrProcessDone) {
			continue // short-lived (the forker's children)
		}
		if err != nil {
			t.Fatalf("open pid %d: %v", pid, err)
		}
		t.Cleanup(func() { p.Close() })
		ps = append(ps, p)
	}
	return ps
}

// assertExited checks that every process has exited.
func assertExited(t *testing.T, ps []*proctree.Process) {
	t.Helper()
	c := ctx(t, 30*time.Second)
	for _, p := range ps {
		if err := p.Wait(c); err != nil {
			t.Errorf("pid %d survived the kill: %v", p.Pid(), err)
		}
	}
}

// assertAlive checks that a process is still running.
func assertAlive(t *testing.T, p *proctree.Process, why string) {
	t.Helper()
	if p.Exited() || p.Signal(0) != nil {
		t.Errorf("pid %d is gone; %s", p.Pid(), why)
	}
}

// members returns g's members, sorted.
func members(t *testing.T, g cgroup.Group) []int {
	t.Helper()
	m, err := g.Members(ctx(t, 30*time.Second))
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	return m
}

// contains reports whether all of want are in got.
func contains(got []int, want ...int) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// killedBySIGKILL checks how a direct child of the test ended.
func killedBySIGKILL(t *testing.T, c *exec.Cmd) {
	t.Helper()
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("pid %d ended with %v, want SIGKILL", c.Process.Pid, err)
	}
}

// waitReparented waits until pid no longer descends from ancestor (its
// parent exited and it was reparented).
func waitReparented(t *testing.T, pid, ancestor int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		ds, err := proctree.Descendants(ancestor)
		if err != nil || !slices.Contains(ds, pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still descends from %d", pid, ancestor)
		}
	}
}
