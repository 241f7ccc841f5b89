package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// goneTimeout bounds the wait for processes to die after a trigger. The
// agent takes milliseconds; the bound is for a loaded CI machine.
const goneTimeout = 30 * time.Second

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }

// startChild starts argv as a child of the test; the cleanup kills it if
// it still runs and reaps it.
func startChild(t testing.TB, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	reapedCh.Store(cmd, reaped)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-reaped
		reapedCh.Delete(cmd)
	})
	return cmd
}

// reapedCh maps a child started by startChild to the channel closed once
// it is reaped.
var reapedCh sync.Map

// sleeper starts `sleep 1000` as a child of the test (see startChild).
func sleeper(t testing.TB) *exec.Cmd {
	t.Helper()
	return startChild(t, "sleep", "1000")
}

// hold opens a pidfd on each pid, so that the test can wait for exactly
// those processes. A pid already gone is left out: it is already dead.
func hold(t testing.TB, pids ...int) []*proctree.Process {
	t.Helper()
	var ps []*proctree.Process
	for _, pid := range pids {
		p, err := proctree.Open(pid)
		if errors.Is(err, os.ErrProcessDone) {
			continue
		}
		if err != nil {
			t.Fatalf("pidfd for %d: %v", pid, err)
		}
		t.Cleanup(func() { p.Close() })
		ps = append(ps, p)
	}
	return ps
}

// waitGone waits until every process has exited (an unreaped zombie has).
func waitGone(t testing.TB, what string, ps []*proctree.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), goneTimeout)
	defer cancel()
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("%s: pid %d (%s) still runs %v after the trigger: %v", what, p.Pid(), comm(p.Pid()), goneTimeout, err)
		}
	}
}

// waitExec waits until pid runs the program comm: a child a shell started
// with "prog &" has forked at once, but execs prog a moment later.
func waitExec(t testing.TB, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(goneTimeout)
	for {
		st, err := proctree.ReadStat(pid)
		if err == nil && st.Comm == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never ran %s (last: %+v, %v)", pid, comm, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stillRuns reports whether p has not exited.
func stillRuns(p *proctree.Process) bool { return !p.Exited() }

func comm(pid int) string {
	st, err := proctree.ReadStat(pid)
	if err != nil {
		return "?"
	}
	return st.Comm + " " + string(st.State)
}

// killAndReap kills a child started by startChild and waits until it is
// reaped: its pid is then free.
func killAndReap(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Kill()
	reaped, ok := reapedCh.Load(cmd)
	if !ok {
		t.Fatalf("killAndReap: %v was not started by startChild", cmd.Args)
	}
	select {
	case <-reaped.(chan struct{}):
	case <-time.After(goneTimeout):
		t.Fatalf("pid %d not reaped %v after SIGKILL", cmd.Process.Pid, goneTimeout)
	}
}

// reusePid starts a process (sleep) that gets pid, which must be free
// (harness.ReusePid). The cleanup kills the newcomer.
func reusePid(t testing.TB, pid int) *proctree.Process {
	t.Helper()
	p, err := harness.ReusePid(t, pid, 500)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitNoDir waits until a group's cgroup directory is removed.
func waitNoDir(t testing.TB, dir string) {
	t.Helper()
	deadline := time.Now().Add(goneTimeout)
	for {
		_, err := os.Stat(dir)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup %s still exists %v after its group was killed", dir, goneTimeout)
		}
		sleepBriefly()
	}
}

// eventLog follows every event of the agent from its creation on.
type eventLog struct {
	mu     sync.Mutex
	events []ipc.Event
	added  chan struct{} // closed and replaced at each event
	err    error
}

// follow subscribes to every event the caller (root) may see. The cleanup
// stops the subscription and waits for its goroutine.
func (a *agent) follow(t testing.TB) *eventLog {
	t.Helper()
	c := a.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Subscribe(ctx, "")
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	l := &eventLog{added: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range events {
			l.mu.Lock()
			if err != nil {
				l.err = err
			} else {
				l.events = append(l.events, ev)
			}
			close(l.added)
			l.added = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// wait returns the first event of that name for the group, waiting for it.
func (l *eventLog) wait(t testing.TB, group, event string) ipc.Event {
	t.Helper()
	timeout := time.After(goneTimeout)
	for {
		l.mu.Lock()
		for _, ev := range l.events {
			if ev.Group == group && ev.Event == event {
				l.mu.Unlock()
				return ev
			}
		}
		added, err := l.added, l.err
		l.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for %s of group %s: the event stream ended: %v", event, group, err)
		}
		select {
		case <-added:
		case <-timeout:
			t.Fatalf("no %s event for group %s within %v", event, group, goneTimeout)
		}
	}
}

// show returns a group and its members.
func (a *agent) show(t testing.TB, id string) (*ipc.Group, []int) {
	t.Helper()
	g, members, err := a.client(t).Show(context.Background(), id)
	if err != nil {
		t.Fatalf("show %s: %v", id, err)
	}
	return g, members
}

// signalPid sends sig to a process the test did not start, by pidfd.
func signalPid(t testing.TB, pid int, sig syscall.Signal) {
	t.Helper()
	p, err := proctree.Open(pid)
	if err != nil {
		t.Fatalf("pidfd for %d: %v", pid, err)
	}
	defer p.Close()
	if err := p.Signal(sig); err != nil {
		t.Fatalf("signal %d: %v", pid, err)
	}
}
