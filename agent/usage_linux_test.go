package agent

import (
	"bufio"
	"io"
	"os/exec"
	"testing"

	"github.com/orphand/orphand/ipc"
)

// A live group shows what its cgroup used so far; its death carries the
// final figures, which the dead group keeps showing. A figure the host
// cannot give is null with the reason, never zero.
func TestUsageLiveAndFinal(t *testing.T) {
	ta, _ := startCgroupfsAgent(t, testConfig())
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	cmd := exec.Command("sh", "-c", `read x; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo done; read y`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sh, gate := startGated(t, cmd)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "done\n" {
		t.Fatalf("the busy loop said %q, %v", line, err)
	}

	live := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Group.Usage
	checkUsage(t, "live", live)
	if live.Final || live.CPU == nil || live.CPU.UsageUsec == 0 {
		t.Fatalf("live usage %+v: want CPU time from the busy loop", live)
	}

	c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	ev := events.waitEvent(ipc.EventKilled, g.ID)
	checkUsage(t, "killed event", ev.Usage)
	if ev.Usage == nil || !ev.Usage.Final || ev.Usage.CPU == nil || ev.Usage.CPU.UsageUsec < live.CPU.UsageUsec {
		t.Fatalf("killed event usage %+v, live CPU was %d µs", ev.Usage, live.CPU.UsageUsec)
	}
	dead := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Group.Usage
	if dead == nil || !dead.Final || *dead.CPU != *ev.Usage.CPU {
		t.Errorf("the dead group shows %+v, its death said %+v", dead, ev.Usage)
	}
	listed := c.ok(ipc.Request{Op: ipc.OpList}).Groups
	if len(listed) != 1 || listed[0].Usage == nil || !listed[0].Usage.Final {
		t.Errorf("list: %+v", listed)
	}
}

// checkUsage fails the test if a figure is both missing and unexplained,
// or both there and said to be missing.
func checkUsage(t *testing.T, what string, u *ipc.Usage) {
	t.Helper()
	if u == nil {
		t.Fatalf("%s: no usage", what)
	}
	for name, there := range map[string]bool{"cpu": u.CPU != nil, "memory": u.Memory != nil, "pids": u.Pids != nil, "io": u.IO != nil} {
		reason := u.Unavailable[name]
		if there == (reason != "") {
			t.Errorf("%s: %s there %v, reason %q", what, name, there, reason)
		}
		if !there {
			t.Logf("%s: %s unavailable: %s", what, name, reason)
		}
	}
}

// A watch group has no cgroup: its usage says so.
func TestUsageWatchGroup(t *testing.T) {
	ta, _ := startCgroupfsAgent(t, testConfig())
	c := dial(t, ta.sock)
	w, target := spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	g := c.ok(ipc.Request{Op: ipc.OpWatch, Pid: w.Process.Pid, Kill: []int{target.Process.Pid}}).Group
	u := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Group.Usage
	if u == nil || u.CPU != nil || u.Unavailable["cgroup"] == "" {
		t.Fatalf("watch group usage %+v", u)
	}
}
