package agent

import (
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
)

// A kill with a grace waits it out without holding a worker: a group that
// ignores its polite signal for an hour delays no other group's kill, even
// with a single worker.
func TestGracedKillHoldsNoWorker(t *testing.T) {
	cfg := testConfig()
	cfg.ParallelKills = 1
	ta := startAgent(t, cfg, newFakeBackend(t))
	stubborn := spawn(t, "sh", "-c", `trap "" TERM; exec sleep 300`) // SIG_IGN survives exec
	waitExecd(t, stubborn.Process.Pid, "sleep")                      // else SIGTERM may beat the trap
	c1, c2 := dial(t, ta.sock), dial(t, ta.sock)
	events := dial(t, ta.sock)
	events.ok(ipc.Request{Op: ipc.OpSubscribe})
	hour := int64(time.Hour / time.Millisecond)
	gs := c1.ok(ipc.Request{Op: ipc.OpRegister, Pid: stubborn.Process.Pid, GraceMS: &hour}).Group
	c1.send(`{"op":"kill","group":"` + gs.ID + `"}` + "\n") // answered once the group is empty
	events.waitEvent(ipc.EventKilling, gs.ID)

	normal := spawn(t, "sleep", "300")
	gn := c2.ok(ipc.Request{Op: ipc.OpRegister, Pid: normal.Process.Pid}).Group
	c2.ok(ipc.Request{Op: ipc.OpKill, Group: gn.ID})
	if st := c2.ok(ipc.Request{Op: ipc.OpShow, Group: gs.ID}).Group.State; st != ipc.StateKilling {
		t.Fatalf("the stubborn group is %s, want killing (within its grace)", st)
	}
	_ = stubborn.Process.Kill() // ends the grace early: the group is empty
	if r := c1.recv(); !r.OK || r.Killed == nil || *r.Killed != 1 {
		t.Fatalf("kill of the stubborn group: %+v", r)
	}
}

func TestMergeKill(t *testing.T) {
	polite := cgroup.KillResult{Killed: 3, Method: "signal", Duration: time.Second}
	if got := mergeKill(polite, cgroup.KillResult{}); got.Killed != 3 || got.Method != "signal" {
		t.Errorf("emptied by the signal: %+v", got)
	}
	rest := cgroup.KillResult{Killed: 5, Method: "cgroup.kill", Duration: time.Second}
	if got := mergeKill(cgroup.KillResult{Killed: 3}, rest); got.Killed != 5 || got.Method != "cgroup.kill" || got.Duration != time.Second {
		t.Errorf("SIGKILL step: %+v", got)
	}
	if got := mergeKill(cgroup.KillResult{}, rest); got != rest {
		t.Errorf("no grace: %+v", got)
	}
}
