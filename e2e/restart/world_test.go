package restart

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// goneTimeout bounds a wait for processes to die or a group to end; the
// agent takes milliseconds, the bound is for a loaded CI machine.
const goneTimeout = 60 * time.Second

// child is a process the test started, held by pidfd, reaped by the test.
type child struct {
	cmd    *exec.Cmd
	p      *proctree.Process
	reaped chan struct{}
}

// startChild starts argv (with this run's mark in its environment); the
// test's cleanup kills and reaps it.
func startChild(t *testing.T, stdin bool, argv ...string) (*child, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	var in io.WriteCloser
	var out *bufio.Reader
	var err error
	if stdin {
		if in, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		out = bufio.NewReader(pipe)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p, err := proctree.Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, p: p, reaped: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.reaped) }()
	t.Cleanup(func() {
		// Killed before its stdin closes: EOF would release a gated tree.
		_ = p.Signal(syscall.SIGKILL)
		<-c.reaped
		if in != nil {
			in.Close()
		}
		p.Close()
	})
	return c, in, out
}

// killReap SIGKILLs the child and waits until it is reaped: its pid is free.
func (c *child) killReap(t *testing.T) {
	t.Helper()
	_ = c.p.Signal(syscall.SIGKILL)
	select {
	case <-c.reaped:
	case <-time.After(goneTimeout):
		t.Fatalf("pid %d not reaped after SIGKILL", c.p.Pid())
	}
}

// treeScript is a spawner: once told (a line on stdin) it starts a child
// and a double-forked setsid daemon that leaves its process tree, says
// "ready" and waits. It ignores SIGTERM, so that a graced kill takes its
// SIGKILL (and the test can crash the agent in the middle).
const treeScript = `trap "" TERM; read x; sleep 1000 & (setsid sleep 1000 &); echo ready; wait; sleep 1000`

// tree is a spawner started from treeScript.
type tree struct {
	*child
	gate     io.WriteCloser
	out      *bufio.Reader
	released bool // its children have been started
}

func startTree(t *testing.T) *tree {
	t.Helper()
	c, in, out := startChild(t, true, "sh", "-c", treeScript)
	return &tree{child: c, gate: in, out: out}
}

// release lets the spawner start its children and waits until it has.
func (tr *tree) release(t *testing.T) {
	t.Helper()
	if tr.released {
		return
	}
	tr.released = true
	if _, err := io.WriteString(tr.gate, "go\n"); err != nil {
		t.Fatalf("release spawner %d: %v", tr.p.Pid(), err)
	}
	line := make(chan string, 1)
	go func() { l, _ := tr.out.ReadString('\n'); line <- l }()
	select {
	case l := <-line:
		if l != "ready\n" {
			t.Fatalf("spawner %d said %q", tr.p.Pid(), l)
		}
	case <-time.After(goneTimeout):
		t.Fatalf("spawner %d did not start its children", tr.p.Pid())
	}
}

// client dials the agent for one request (connections are cheap, and a
// fresh one survives the agent's idle deadline and its restarts).
func client(t *testing.T, a agentCtl) *ipc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	c, err := ipc.Dial(ctx, a.Socket())
	if err != nil {
		t.Fatalf("dial the agent: %v", err)
	}
	return c
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), goneTimeout)
}

// list returns the groups by id, failing on a duplicate.
func list(t *testing.T, a agentCtl) map[string]ipc.Group {
	t.Helper()
	c := client(t, a)
	defer c.Close()
	ctx, cancel := ctxTimeout()
	defer cancel()
	gs, err := c.List(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	out := map[string]ipc.Group{}
	names := map[string]string{}
	for _, g := range gs {
		if _, dup := out[g.ID]; dup {
			t.Fatalf("group %s listed twice", g.ID)
		}
		if other, dup := names[g.Name]; dup && g.Name != "" {
			t.Fatalf("groups %s and %s share the name %q: a registration was duplicated", other, g.ID, g.Name)
		}
		out[g.ID], names[g.Name] = g, g.ID
	}
	return out
}

// byName finds the group named name.
func byName(groups map[string]ipc.Group, name string) (ipc.Group, bool) {
	for _, g := range groups {
		if g.Name == name {
			return g, true
		}
	}
	return ipc.Group{}, false
}

// members returns the live members of a group, held by pidfd.
func members(t *testing.T, a agentCtl, id string) []*proctree.Process {
	t.Helper()
	c := client(t, a)
	defer c.Close()
	ctx, cancel := ctxTimeout()
	defer cancel()
	_, pids, err := c.Show(ctx, id)
	if err != nil {
		t.Fatalf("show %s: %v", id, err)
	}
	var ps []*proctree.Process
	for _, pid := range pids {
		if p, err := proctree.Open(pid); err == nil {
			t.Cleanup(func() { killWait(p) })
			ps = append(ps, p)
		}
	}
	return ps
}

// waitGone waits until every process has exited.
func waitGone(t *testing.T, what string, ps []*proctree.Process) {
	t.Helper()
	ctx, cancel := ctxTimeout()
	defer cancel()
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("%s: pid %d is still alive: an orphan outlived its group", what, p.Pid())
		}
	}
}

// checkAlive fails unless every process is alive.
func checkAlive(t *testing.T, what string, ps []*proctree.Process) {
	t.Helper()
	for _, p := range ps {
		if p.Exited() {
			t.Fatalf("%s: pid %d was killed, and should not have been", what, p.Pid())
		}
	}
}

// waitState polls until group id is in state.
func waitState(t *testing.T, a agentCtl, id, state string) ipc.Group {
	t.Helper()
	deadline := time.Now().Add(goneTimeout)
	for {
		g, ok := list(t, a)[id]
		if ok && g.State == state {
			return g
		}
		if time.Now().After(deadline) {
			t.Errorf("group %s (%s) is %q (listed: %v) after %v, want %s", id, g.Name, g.State, ok, goneTimeout, state)
			return g
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// killWait SIGKILLs p (through its pidfd: never another process), waits
// until it has exited and closes it: a cleanup leaves nothing dying.
func killWait(p *proctree.Process) {
	_ = p.Signal(syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), goneTimeout)
	defer cancel()
	_ = p.Wait(ctx)
	p.Close()
}
