package agent

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// A real fault keeps a process alive past SIGKILL: a member frozen in the
// host's cgroup v1 freezer sits in D state until thawed, whatever cgroup
// v2's cgroup.kill does. The group is reported stuck — event, flag in show
// and list, metrics, status, a warning naming the process — and the agent
// keeps killing it; once thawed it dies, the flag clears and the killed
// event says the kill had been stuck.
func TestStuckKillReportedAndCleared(t *testing.T) {
	cfg := testConfig()
	cfg.StuckAfter = 300 * time.Millisecond
	ta, s := startMetricsAgent(t, cfg)
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	sh, gate := gatedShell(t, `read x; sleep 1000 & wait`)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	members := waitMembers(t, c, g.ID, 2)
	sleeper := members[slices.IndexFunc(members, func(p int) bool { return p != sh.Process.Pid })]
	victim := open(t, sleeper)

	// After the shell's cleanup, so that it runs first: thawed, the sleeper
	// can die and be reaped.
	fz := testutil.NewFreezerV1(t)
	fz.Add(sleeper)
	fz.Freeze()

	if err := sh.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := events.waitEvent(ipc.EventStuck, g.ID)
	if !slices.Contains(ev.Members, sleeper) || ev.Millis == nil || *ev.Millis < 300 {
		t.Errorf("stuck event %+v: want members with %d, ms >= 300", ev, sleeper)
	}
	shown := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Group
	if shown.State != ipc.StateKilling || !shown.Stuck || shown.StuckSince.IsZero() {
		t.Errorf("show: state %s, stuck %v since %v; want killing, stuck", shown.State, shown.Stuck, shown.StuckSince)
	}
	listed := c.ok(ipc.Request{Op: ipc.OpList}).Groups
	if i := slices.IndexFunc(listed, func(x ipc.Group) bool { return x.ID == g.ID }); i < 0 || !listed[i].Stuck {
		t.Errorf("list does not show %s stuck: %+v", g.ID, listed)
	}
	s.scrape().want(map[string]float64{
		`orphand_stuck_groups`:            1,
		`orphand_groups{state="stuck"}`:   1,
		`orphand_groups{state="killing"}`: 1,
	})
	st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status
	if st.Groups[ipc.GroupsStuck] != 1 || st.Metrics.StuckGroups != 1 {
		t.Errorf("status: groups %v, stuck_groups %d", st.Groups, st.Metrics.StuckGroups)
	}
	logs := ta.logs.String()
	want := regexp.MustCompile(fmt.Sprintf(`msg="process survives SIGKILL" group=%s .* member_pid=%d state=D wchan=\S+ cmdline="sleep 1000" freezer_v1=%s freezer_state=FROZEN why=`,
		g.ID, sleeper, regexp.QuoteMeta(fz.Path)))
	if !want.MatchString(logs) {
		t.Errorf("no warning naming the stuck process (%s) in the log", want)
	}
	if !alive(victim) {
		t.Fatal("the frozen process died before it was thawed: the fault did not hold")
	}

	fz.Thaw()
	ev = events.waitEvent(ipc.EventKilled, g.ID)
	if !ev.Stuck {
		t.Errorf("killed event %+v does not say the kill was stuck", ev)
	}
	waitExit(t, victim)
	shown = c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Group
	if shown.State != ipc.StateDead || shown.Stuck {
		t.Errorf("after the thaw: state %s, stuck %v", shown.State, shown.Stuck)
	}
	s.scrape().want(map[string]float64{
		`orphand_stuck_groups`:          0,
		`orphand_groups{state="stuck"}`: 0,
		`orphand_groups{state="dead"}`:  1,
	})
}

// A stuck group holds no kill worker: with one worker, another group's
// kill goes through while the first is stuck.
func TestStuckKillHoldsNoWorker(t *testing.T) {
	cfg := testConfig()
	cfg.StuckAfter = 200 * time.Millisecond
	cfg.ParallelKills = 1
	ta, _ := startCgroupfsAgent(t, cfg)
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	stuck := spawn(t, "sleep", "1000")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: stuck.Process.Pid, On: ipc.OnDisconnect}).Group
	victim := open(t, stuck.Process.Pid)
	fz := testutil.NewFreezerV1(t)
	fz.Add(stuck.Process.Pid)
	fz.Freeze()
	c.nc.Close() // the trigger
	events.waitEvent(ipc.EventStuck, g.ID)

	c2 := dial(t, ta.sock)
	other := spawn(t, "sleep", "1000")
	g2 := c2.ok(ipc.Request{Op: ipc.OpRegister, Pid: other.Process.Pid}).Group
	done := make(chan ipc.Response, 1)
	go func() { done <- c2.do(ipc.Request{Op: ipc.OpKill, Group: g2.ID}) }()
	select {
	case r := <-done:
		if !r.OK {
			t.Fatalf("kill: %+v", r.Error)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a kill waited behind a stuck group's")
	}
	if !alive(victim) {
		t.Fatal("the frozen process died before it was thawed")
	}
	fz.Thaw()
	events.waitEvent(ipc.EventKilled, g.ID)
	waitExit(t, victim)
	if st, err := proctree.ReadStat(stuck.Process.Pid); err == nil && !st.IsZombie() {
		t.Errorf("pid %d is in state %c after its kill", stuck.Process.Pid, st.State)
	}
}
