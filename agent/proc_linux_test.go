package agent

import (
	"context"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// The agent with the proc backend (no cgroups). The workloads still run in
// a test cgroup, as a safety net that kills what the test leaves.

func startProcAgent(t *testing.T, cfg proc.Config) (*testAgent, string) {
	t.Helper()
	_, dir := cgroupRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.Logger = testLogger(t)
	b, err := proc.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("proc: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if !cfg.NoConnector && b.Tracking() != proc.TrackConnector {
		t.Fatalf("tracking %q as root in the initial namespaces", b.Tracking())
	}
	return startAgent(t, testConfig(), b), dir
}

// procShell starts a gated `sh -c script` inside the cgroup dir.
func procShell(t *testing.T, dir, script string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	return startGated(t, cmd)
}

// The promise, with the proc connector: the spawner is SIGKILLed, and what
// it started after registering — a child and a double-forked setsid
// daemon — is killed with it.
func TestProcSpawnerKilledTakesDaemonsWithIt(t *testing.T) {
	ta, dir := startProcAgent(t, proc.Config{})
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	sh, gate := procShell(t, dir, `read x; (setsid sleep 300 &); sleep 300 & wait`)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	if g.Backend != "proc" || g.Cgroup != "" || g.Members != 1 {
		t.Fatalf("group %+v", g)
	}
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	// Both sleeps must be members before the spawner dies: three members
	// can also be the shell, the subshell and setsid before the shell has
	// forked its own sleep (seen under load), and a spawner killed then
	// leaves a single survivor.
	members := openAll(t, waitMembersRunning(t, c, g.ID, "sleep", 2))
	if err := sh.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := events.waitEvent(ipc.EventKilled, g.ID)
	for _, p := range members {
		waitExit(t, p)
	}
	if *ev.Killed < 2 {
		t.Fatalf("killed %d, want the 2 survivors at least", *ev.Killed)
	}
}

// waitMembersRunning waits until at least n of the group's members run the
// program comm, and returns those.
func waitMembersRunning(t *testing.T, c *client, group, comm string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var found []int
		for _, pid := range c.ok(ipc.Request{Op: ipc.OpShow, Group: group}).Members {
			if st, err := proctree.ReadStat(pid); err == nil && st.Comm == comm {
				found = append(found, pid)
			}
		}
		if len(found) >= n {
			return found
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s has %d members running %s, want %d", group, len(found), comm, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A registration by a process inside a proc group nests in it, and killing
// the outer group kills the nested group's processes too.
func TestProcNesting(t *testing.T) {
	ta, dir := startProcAgent(t, proc.Config{})
	c := dial(t, ta.sock)
	sh, gate := procShell(t, dir, `read x; sh -c 'sleep 300 & wait' & wait`)
	outer := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	inner := waitChildren(t, sh.Process.Pid, 1)[0]
	waitChildren(t, inner, 1)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: inner}).Group
	if g.Parent != outer.ID || g.Members != 2 {
		t.Fatalf("inner group %+v, want 2 members nested in %s", g, outer.ID)
	}
	all := c.ok(ipc.Request{Op: ipc.OpShow, Group: outer.ID}).Members
	if len(all) != 3 {
		t.Errorf("outer members %v, want 3 (the nested group's included)", all)
	}
	held := openAll(t, all)
	// The agent kills the nested group too, at the same time: how many
	// each kill counts depends on which reaches a process first (the outer
	// shell even exits by itself once its child is gone).
	c.ok(ipc.Request{Op: ipc.OpKill, Group: outer.ID})
	for _, p := range held {
		waitExit(t, p)
	}
	for _, id := range []string{outer.ID, g.ID} {
		if st := c.ok(ipc.Request{Op: ipc.OpShow, Group: id}).Group.State; st != ipc.StateDead {
			t.Errorf("group %s is %s after the outer kill, want dead", id, st)
		}
	}
}

// hello and status say how the proc backend follows forks and what it
// cannot promise.
func TestProcStatusSaysWhatItCannotPromise(t *testing.T) {
	for _, cfg := range []proc.Config{{}, {NoConnector: true}} {
		ta, _ := startProcAgent(t, cfg)
		c := dial(t, ta.sock)
		want := proc.TrackConnector
		if cfg.NoConnector {
			want = proc.TrackRescan
		}
		h := c.ok(ipc.Request{Op: ipc.OpHello, Version: ipc.Version})
		if h.Backend != "proc" || !slices.Contains(h.Features, want) || len(h.Limitations) == 0 {
			t.Errorf("hello: backend %q, features %v, limitations %q; want proc, %s and what it cannot promise", h.Backend, h.Features, h.Limitations, want)
		}
		st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status
		lim, _ := st.Cgroup["limitations"].([]any)
		if st.Cgroup["tracking"] != want || len(lim) == 0 {
			t.Errorf("status cgroup = %v", st.Cgroup)
		}
	}
}
