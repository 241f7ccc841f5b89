package agent

import (
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// tree starts `sh` with two sleeping children and returns the shell's pid
// and the children, held by pidfd.
func tree(t *testing.T) (sh int, kids []*proctree.Process) {
	t.Helper()
	cmd := spawn(t, "sh", "-c", "sleep 300 & sleep 300 & wait")
	for _, k := range waitChildren(t, cmd.Process.Pid, 2) {
		kids = append(kids, open(t, k))
	}
	return cmd.Process.Pid, kids
}

func subscribe(t *testing.T, ta *testAgent, group string) *client {
	t.Helper()
	c := dial(t, ta.sock)
	c.ok(ipc.Request{Op: ipc.OpSubscribe, Group: group})
	return c
}

func TestRegisterKilledWhenSpawnerExits(t *testing.T) {
	b := newFakeBackend(t)
	ta := startAgent(t, testConfig(), b)
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)

	sh, kids := tree(t)
	r := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh, Name: "tree", ID: json.RawMessage(`1`)})
	g := r.Group
	if g == nil || len(g.ID) != 12 || g.Kind != ipc.KindSubtree || g.State != ipc.StateActive ||
		g.Spawner.Pid != sh || g.Members != 3 || g.Name != "tree" || g.On != ipc.OnExit || g.Signal != "SIGTERM" {
		t.Fatalf("register: %+v", g)
	}
	if ev := events.event(); ev.Event != ipc.EventRegistered || ev.Group != g.ID {
		t.Fatalf("first event %+v", ev)
	}
	if show := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}); len(show.Members) != 3 {
		t.Fatalf("show members %v", show.Members)
	}

	if err := syscall.Kill(sh, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ev := events.waitEvent(ipc.EventSpawnerExited, g.ID); ev.Pid != sh {
		t.Fatalf("spawner_exited %+v", ev)
	}
	if ev := events.waitEvent(ipc.EventKilling, g.ID); ev.Reason != reasonSpawnerExited {
		t.Fatalf("killing %+v", ev)
	}
	ev := events.waitEvent(ipc.EventKilled, g.ID)
	if ev.Killed == nil || *ev.Killed != 2 || ev.Millis == nil {
		t.Fatalf("killed event %+v", ev)
	}
	for _, k := range kids {
		waitExit(t, k)
	}
	show := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID})
	if show.Group.State != ipc.StateDead || show.Group.Killed != 2 || len(show.Members) != 0 || show.Group.Ended.IsZero() {
		t.Fatalf("after the kill: %+v members %v", show.Group, show.Members)
	}
	if l := c.ok(ipc.Request{Op: ipc.OpList}); len(l.Groups) != 1 || l.Groups[0].State != ipc.StateDead {
		t.Fatalf("list: %+v", l.Groups)
	}
	if live := b.live(); len(live) != 0 {
		t.Fatalf("groups not removed after the kill: %v", live)
	}
}

func TestKillRequestWithGrace(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	// The child traps TERM and exits 0: the polite signal is enough.
	sh := spawn(t, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid, GraceMS: ptr(int64(10000))}).Group
	if g.GraceMS != 10000 {
		t.Fatalf("grace %d", g.GraceMS)
	}
	waitChildren(t, sh.Process.Pid, 1) // its first sleep: the trap is set
	r := c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	if r.Killed == nil || *r.Killed < 1 {
		t.Fatalf("kill: %+v", r)
	}
	st, _ := sh.Process.Wait()
	if st == nil || !st.Exited() || st.ExitCode() != 0 {
		t.Fatalf("the spawner did not exit politely: %v", st)
	}
	// A second kill answers with the same count.
	r2 := c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	if *r2.Killed != *r.Killed {
		t.Fatalf("second kill %d, first %d", *r2.Killed, *r.Killed)
	}
	c.fails(ipc.Request{Op: ipc.OpRelease, Group: g.ID}, ipc.CodeBadRequest)
}

func TestWatchGroup(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	events := subscribe(t, ta, "")
	watched := spawn(t, "sleep", "300")
	t1, t2 := spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	p1, p2 := open(t, t1.Process.Pid), open(t, t2.Process.Pid)
	bystander := spawn(t, "sleep", "300")
	pb := open(t, bystander.Process.Pid)

	g := c.ok(ipc.Request{Op: ipc.OpWatch, Pid: watched.Process.Pid, Kill: []int{t1.Process.Pid, t2.Process.Pid, t1.Process.Pid}}).Group
	if g.Kind != ipc.KindWatch || len(g.Targets) != 2 || g.Members != 2 || g.Spawner.Pid != watched.Process.Pid {
		t.Fatalf("watch: %+v", g)
	}
	// attach adds a target
	t3 := spawn(t, "sleep", "300")
	p3 := open(t, t3.Process.Pid)
	c.ok(ipc.Request{Op: ipc.OpAttach, Group: g.ID, Pid: t3.Process.Pid})
	if s := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}); len(s.Members) != 3 || len(s.Group.Targets) != 3 {
		t.Fatalf("after attach: %+v %v", s.Group, s.Members)
	}
	_ = watched.Process.Kill()
	ev := events.waitEvent(ipc.EventKilled, g.ID)
	if *ev.Killed != 3 {
		t.Fatalf("killed %d", *ev.Killed)
	}
	for _, p := range []*proctree.Process{p1, p2, p3} {
		waitExit(t, p)
	}
	if !alive(pb) {
		t.Fatal("a process that was not a target died")
	}
}

func TestOnDisconnect(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	sleeper := spawn(t, "sleep", "300")
	p := open(t, sleeper.Process.Pid)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sleeper.Process.Pid, On: ipc.OnDisconnect}).Group
	if g.On != ipc.OnDisconnect {
		t.Fatalf("on %q", g.On)
	}
	// Another connection closing changes nothing.
	other := dial(t, ta.sock)
	other.ok(ipc.Request{Op: ipc.OpHello})
	other.nc.Close()
	c.nc.Close()
	if ev := events.waitEvent(ipc.EventKilling, g.ID); ev.Reason != reasonDisconnect {
		t.Fatalf("killing %+v", ev)
	}
	events.waitEvent(ipc.EventKilled, g.ID)
	waitExit(t, p)
}

func TestRelease(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	sh, kids := tree(t)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh}).Group
	c.ok(ipc.Request{Op: ipc.OpRelease, Group: g.ID})
	c.ok(ipc.Request{Op: ipc.OpRelease, Group: g.ID}) // idempotent
	events.waitEvent(ipc.EventReleased, g.ID)
	if err := syscall.Kill(sh, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Nothing happens: check a moment later, then that the registry agrees.
	time.Sleep(200 * time.Millisecond)
	for _, k := range kids {
		if !alive(k) {
			t.Fatal("a released group's process was killed")
		}
	}
	s := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID})
	if s.Group.State != ipc.StateReleased || s.Group.Ended.IsZero() {
		t.Fatalf("released: %+v", s.Group)
	}
	c.fails(ipc.Request{Op: ipc.OpKill, Group: g.ID}, ipc.CodeBadRequest)
	c.fails(ipc.Request{Op: ipc.OpAttach, Group: g.ID, Pid: sh}, ipc.CodeBadRequest)
}

func TestNestedGroupsDieWithParent(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	outer, inner := spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	po, pi := open(t, outer.Process.Pid), open(t, inner.Process.Pid)
	go1 := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: outer.Process.Pid}).Group
	gi := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: inner.Process.Pid, Parent: go1.ID}).Group
	if gi.Parent != go1.ID {
		t.Fatalf("parent %q", gi.Parent)
	}
	// Killing the inner group leaves the outer alone.
	inner2 := spawn(t, "sleep", "300")
	gi2 := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: inner2.Process.Pid, Parent: go1.ID}).Group
	c.ok(ipc.Request{Op: ipc.OpKill, Group: gi2.ID})
	if !alive(po) || !alive(pi) {
		t.Fatal("killing a nested group killed its parent or sibling")
	}
	_ = outer.Process.Kill()
	ev := events.waitEvent(ipc.EventKilling, gi.ID)
	if ev.Reason != reasonParent {
		t.Fatalf("nested killing %+v", ev)
	}
	events.waitEvent(ipc.EventKilled, gi.ID)
	waitExit(t, pi)
	waitExit(t, po)
	// Nesting in a watch group or a dead group is refused.
	x := spawn(t, "sleep", "300")
	c.fails(ipc.Request{Op: ipc.OpRegister, Pid: x.Process.Pid, Parent: go1.ID}, ipc.CodeBadRequest)
	c.fails(ipc.Request{Op: ipc.OpRegister, Pid: x.Process.Pid, Parent: "000000000000"}, ipc.CodeNotFound)
}

func TestLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.GroupsTotal = 2
	cfg.Limits.TargetsPerWatch = 2
	ta := startAgent(t, cfg, newFakeBackend(t))
	c := dial(t, ta.sock)
	a, b, x := spawn(t, "sleep", "300"), spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: a.Process.Pid}).Group
	e := c.fails(ipc.Request{Op: ipc.OpWatch, Pid: b.Process.Pid, Kill: []int{a.Process.Pid, x.Process.Pid, b.Process.Pid}}, ipc.CodeLimitExceeded)
	if e.Limit != "targets_per_watch" {
		t.Fatalf("limit %q", e.Limit)
	}
	c.ok(ipc.Request{Op: ipc.OpRegister, Pid: b.Process.Pid})
	if e := c.fails(ipc.Request{Op: ipc.OpRegister, Pid: x.Process.Pid}, ipc.CodeLimitExceeded); e.Limit != "groups_total" {
		t.Fatalf("limit %q", e.Limit)
	}
	// A dead group no longer counts.
	c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	c.ok(ipc.Request{Op: ipc.OpRegister, Pid: x.Process.Pid})
}

func TestRegisterVanishedOrForbidden(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	gone := spawn(t, "true")
	_ = gone.Wait()
	c.fails(ipc.Request{Op: ipc.OpRegister, Pid: gone.Process.Pid}, ipc.CodeNoSuchProcess)
	c.fails(ipc.Request{Op: ipc.OpRegister, Pid: 1}, ipc.CodePermissionDenied)
	c.fails(ipc.Request{Op: ipc.OpWatch, Pid: 1, Kill: []int{2}}, ipc.CodePermissionDenied)
	self := spawn(t, "sleep", "300")
	e := c.fails(ipc.Request{Op: ipc.OpWatch, Pid: self.Process.Pid, Kill: []int{ta.host.pid}}, ipc.CodePermissionDenied)
	if e.Message == "" {
		t.Fatal("refusal without a reason")
	}
	c.fails(ipc.Request{Op: ipc.OpRegister, Pid: 2}, ipc.CodePermissionDenied) // kthreadd
}

func TestShutdownLeavesGroupsAlone(t *testing.T) {
	b := newFakeBackend(t)
	ta := startAgent(t, testConfig(), b)
	c := dial(t, ta.sock)
	sleeper := spawn(t, "sleep", "300")
	p := open(t, sleeper.Process.Pid)
	c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sleeper.Process.Pid})
	c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sleeper.Process.Pid, On: ipc.OnDisconnect})
	stopAgent(t, ta)
	if !alive(p) {
		t.Fatal("stopping the agent killed a registered group")
	}
}
