package compat

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// waitLong bounds every wait for something the agent does on its own. The
// agent takes milliseconds; the bound is for a loaded CI machine.
const waitLong = 60 * time.Second

// agent is an orphand this test started, with a compatibility socket.
type agent struct {
	p      programs
	socket string // the agent's own
	compat string // the compatibility socket
	log    *testutil.SyncBuffer
	pid    int
	host   *harness.Host
}

// startAgent starts orphand on the host (cgroupfs backend, a cgroup root of
// its own) serving a compatibility socket. The cleanup stops it and fails
// the test if it left a group's cgroup behind.
func startAgent(t testing.TB, config string) *agent {
	t.Helper()
	p := progs(t)
	h := run.NewHost(t, config)
	compat := filepath.Join(h.Dir, "compat.sock")
	d := h.Start(t, harness.Serve{Bin: p.orphand, Backend: "cgroupfs", Extra: []string{"--compat-socket", compat}})
	a := &agent{p: p, socket: h.Socket, compat: compat, log: d.Log, pid: d.Pid(), host: h}
	t.Cleanup(func() {
		if err := d.Stop(30 * time.Second); err != nil {
			t.Errorf("orphand: %v", err)
		}
		if left := h.LeftGroups(); len(left) > 0 {
			t.Errorf("orphand left %d group cgroups: %v", len(left), left)
		}
		if t.Failed() {
			t.Logf("orphand's log:\n%s", a.log)
		}
	})
	if err := d.WaitReady(waitLong); err != nil {
		t.Fatalf("%v\n%s", err, a.log)
	}
	return a
}

// waitNoGroups waits until no group's cgroup is left under the agent's
// root: released groups' cgroups are removed once empty, checked with a
// backoff from 1 s.
func (a *agent) waitNoGroups(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for len(a.host.LeftGroups()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("group cgroups still there %v later: %v", waitLong, a.host.LeftGroups())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client dials the agent's own socket.
func (a *agent) client(t testing.TB) *ipc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := ipc.Dial(ctx, a.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// compatStatus is the compatibility socket's counters (the test is root).
func (a *agent) compatStatus(t testing.TB, c *ipc.Client) ipc.CompatStatus {
	t.Helper()
	st, err := c.Status(context.Background())
	if err != nil || st.Compat == nil {
		t.Fatalf("status: %+v, %v", st, err)
	}
	return *st.Compat
}

// waitRecords waits until the agent has handled n records in all: those
// sent are then in effect (registered, released or refused).
func (a *agent) waitRecords(t testing.TB, c *ipc.Client, n uint64) ipc.CompatStatus {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		st := a.compatStatus(t, c)
		if st.Records >= n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent handled %d records in %v, want %d", st.Records, waitLong, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// compatGroups lists the compat groups whose parent (spawner) is parent.
func compatGroups(t testing.TB, c *ipc.Client, parent int) []ipc.Group {
	t.Helper()
	gs, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []ipc.Group
	for _, g := range gs {
		if g.Origin == ipc.OriginCompat && g.Spawner.Pid == parent {
			out = append(out, g)
		}
	}
	return out
}

// env is the environment of a program the tests run: ORPHAND_SOCKET, as
// the old clients read it, pointing at sock, and more.
func env(sock string, more ...string) []string {
	return append(append(os.Environ(), "ORPHAND_SOCKET="+sock), more...)
}

// hold opens a pidfd on each pid, so that the test waits for exactly
// those processes; the cleanup SIGKILLs any still running (through the
// pidfd: never another process) and closes them.
func hold(t testing.TB, pids ...int) []*proctree.Process {
	t.Helper()
	var ps []*proctree.Process
	for _, pid := range pids {
		p, err := proctree.Open(pid)
		if err != nil {
			t.Fatalf("pidfd for %d: %v", pid, err)
		}
		t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL); p.Close() })
		ps = append(ps, p)
	}
	return ps
}

// waitGone waits until every process has exited (a zombie has).
func waitGone(t testing.TB, what string, ps []*proctree.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("%s: pid %d still runs %v later: %v", what, p.Pid(), waitLong, err)
		}
	}
}

// started is a program the test started, reaped in the background so that
// its pid is freed as soon as it dies (whatever its children hold).
type started struct {
	cmd    *exec.Cmd
	reaped chan struct{}
	lines  chan string // its stdout, line by line
}

// start starts argv with env; the cleanup kills it (SIGKILL) if it still
// runs, and reaps it.
func start(t testing.TB, environ []string, cred *syscall.Credential, argv ...string) *started {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.Dir = "/"
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	// Files, not buffers: exec.Cmd.Wait would wait for its children to
	// close a pipe it copies from, and the program must be reaped when it
	// dies, not when they do.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, stderr
	err = cmd.Start()
	w.Close()
	stderr.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	s := &started{cmd: cmd, reaped: make(chan struct{}), lines: make(chan string, 1024)}
	stop := make(chan struct{})
	var read sync.WaitGroup
	read.Go(func() { // ends at EOF, or when the cleanup closes r
		defer close(s.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			case <-stop:
				return
			}
		}
	})
	go func() { _ = cmd.Wait(); close(s.reaped) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.reaped
		close(stop)
		r.Close()
		read.Wait()
		if b, _ := os.ReadFile(stderr.Name()); t.Failed() && len(b) > 0 {
			t.Logf("%s: stderr:\n%s", argv[0], b)
		}
	})
	return s
}

// line returns the next line of the program's stdout.
func (s *started) line(t testing.TB) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatalf("%s ended its output early (%v)", s.cmd.Path, s.cmd.ProcessState)
		}
		return l
	case <-time.After(waitLong):
		t.Fatalf("%s printed nothing for %v", s.cmd.Path, waitLong)
	}
	return ""
}

// kill SIGKILLs the program and waits until it is reaped.
func (s *started) kill(t testing.TB) {
	t.Helper()
	_ = s.cmd.Process.Kill()
	select {
	case <-s.reaped:
	case <-time.After(waitLong):
		t.Fatalf("pid %d not reaped %v after SIGKILL", s.cmd.Process.Pid, waitLong)
	}
}
