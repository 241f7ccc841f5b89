package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/agent/compat"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/ipc"
)

// compatAgent is an agent on the cgroupfs backend with a compatibility
// socket, whose log the test reads.
type compatAgent struct {
	*testAgent
	compatSock string
	root       string // the backend root's directory
	log        *logBuffer
}

func startCompatAgent(t *testing.T) *compatAgent {
	t.Helper()
	return startCompatAgentWith(t, testConfig())
}

func startCompatAgentWith(t *testing.T, cfg Config) *compatAgent {
	t.Helper()
	rel, dir := cgroupRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := cgroupfs.Open(ctx, cgroupfs.Config{Root: rel, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("cgroupfs: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	tmp := t.TempDir()
	sock, csock := filepath.Join(tmp, "orphand.sock"), filepath.Join(tmp, "compat.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cln, err := net.Listen("unix", csock)
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuffer{t: t}
	ready := make(chan struct{})
	cfg.OnReady = func() { close(ready) }
	a, err := New(cfg, b, slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
		WithCompat(CompatConfig{Listener: cln}))
	if err != nil {
		t.Fatal(err)
	}
	stop := runAgent(t, a, ln, ready, nil)
	t.Cleanup(stop)
	return &compatAgent{testAgent: &testAgent{Agent: a, sock: sock, stop: stop}, compatSock: csock, root: dir, log: lb}
}

// compatSend sends records on one connection, then a PING, and returns
// once it is echoed: every record before it has been handled.
func compatSend(t *testing.T, sock string, recs ...compat.Record) {
	t.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var b []byte
	for _, r := range recs {
		b = r.Append(b)
	}
	ping := compat.Record{Parent: 1, Child: 2, Action: compat.ActionPing}
	if _, err := nc.Write(ping.Append(b)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	echo := make([]byte, compat.RecordSize)
	if _, err := io.ReadFull(nc, echo); err != nil || !bytes.Equal(echo, ping.Append(nil)) {
		t.Fatalf("PING echo %x: %v", echo, err)
	}
}

func reg(parent, child int) compat.Record {
	return compat.Record{Parent: uint32(parent), Child: uint32(child), Action: compat.ActionRegister}
}

func unreg(parent, child int) compat.Record {
	return compat.Record{Parent: uint32(parent), Child: uint32(child), Action: compat.ActionUnregister}
}

// compatGroups lists the compat groups.
func compatGroups(c *client) []ipc.Group {
	var out []ipc.Group
	for _, g := range c.ok(ipc.Request{Op: ipc.OpList}).Groups {
		if g.Origin == ipc.OriginCompat {
			out = append(out, g)
		}
	}
	return out
}

// family starts a parent (a shell, the test's child, so a descendant of
// the agent's test process that sends the records) with one child, a
// shell, which has two sleeping children of its own; the child's children
// are never registered.
func family(t *testing.T) (parent int, child int, grandchildren []int) {
	t.Helper()
	p := spawn(t, "sh", "-c", `sh -c 'sleep 300 & sleep 300 & wait' & wait`)
	child = waitChildren(t, p.Process.Pid, 1)[0]
	return p.Process.Pid, child, waitChildren(t, child, 2)
}

// The promise: the parent dies, and the child dies with everything it
// started — not the child's pid only, as the original daemon did.
func TestCompatParentDeathKillsSubtree(t *testing.T) {
	ca := startCompatAgent(t)
	events := subscribe(t, ca.testAgent, "")
	c := dial(t, ca.sock)
	parent, child, gkids := family(t)
	bystander := open(t, spawn(t, "sleep", "300").Process.Pid)

	compatSend(t, ca.compatSock, reg(parent, child))
	gs := compatGroups(c)
	if len(gs) != 1 {
		t.Fatalf("compat groups %+v, want one", gs)
	}
	g := gs[0]
	if g.Kind != ipc.KindWatch || g.Spawner.Pid != parent || len(g.Targets) != 1 || g.Targets[0].Pid != child ||
		g.Cgroup == "" || g.Signal != "SIGINT" || g.State != ipc.StateActive {
		t.Fatalf("compat group %+v", g)
	}
	members := c.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Members
	if !containsAll(members, append(gkids, child)...) || containsAll(members, parent) {
		t.Fatalf("members %v, want the child %d and its children %v, not the parent %d", members, child, gkids, parent)
	}
	held := append(openAll(t, gkids), open(t, child))

	if err := syscall.Kill(parent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := events.waitEvent(ipc.EventKilled, g.ID)
	for _, p := range held {
		waitExit(t, p)
	}
	if *ev.Killed != 3 {
		t.Errorf("killed %d, want 3", *ev.Killed)
	}
	if !alive(bystander) {
		t.Error("a process outside the group died")
	}
	if left := subdirs(t, ca.root); len(left) != 0 {
		t.Errorf("cgroups left: %v", left)
	}
}

func containsAll(s []int, v ...int) bool {
	for _, x := range v {
		found := false
		for _, y := range s {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

// UNREGISTER (the parent waited for the child) releases the group: the
// parent's death then kills nothing.
func TestCompatUnregisterReleases(t *testing.T) {
	ca := startCompatAgent(t)
	c := dial(t, ca.sock)
	parent, child, gkids := family(t)
	compatSend(t, ca.compatSock, reg(parent, child))
	compatSend(t, ca.compatSock, unreg(parent, child))
	gs := compatGroups(c)
	if len(gs) != 1 || gs[0].State != ipc.StateReleased {
		t.Fatalf("after UNREGISTER: %+v", gs)
	}
	held := append(openAll(t, gkids), open(t, child))
	p := open(t, parent)
	if err := syscall.Kill(parent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p)
	compatSend(t, ca.compatSock) // a round trip through the agent after the exit
	time.Sleep(100 * time.Millisecond)
	for _, h := range held {
		if !alive(h) {
			t.Fatalf("pid %d died, though its parent had unregistered it", h.Pid())
		}
	}
}

// Records the agent must not act on are refused and logged, and kill
// nothing: pid 1 or the agent as the child, a parent that is not the
// sender's, a zero pid, a child that does not exist; then the socket
// still serves.
func TestCompatRefusals(t *testing.T) {
	ca := startCompatAgent(t)
	c := dial(t, ca.sock)
	parent, child, _ := family(t)
	outsider := orphan(t) // not a descendant of the sender (this process)
	compatSend(t, ca.compatSock,
		reg(parent, 1),
		reg(parent, os.Getpid()),
		reg(outsider, child),
		reg(1, child),
		reg(parent, parent),
		compat.Record{Parent: uint32(parent), Child: 0, Action: compat.ActionRegister},
		reg(parent, 4194303),
	)
	if gs := compatGroups(c); len(gs) != 0 {
		t.Fatalf("groups made from refused records: %+v", gs)
	}
	for _, want := range []string{
		"cannot register pid 1", "it is the orphand agent itself", "is neither the sender", "record dropped",
	} {
		if !strings.Contains(ca.log.String(), want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	compatSend(t, ca.compatSock, reg(parent, child))
	if gs := compatGroups(c); len(gs) != 1 {
		t.Fatalf("a good record after the bad ones: %+v", gs)
	}
	st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status.Compat
	if st == nil || st.Records != 7 || st.Registered != 1 || st.Refused != 6 {
		t.Errorf("status of the compatibility socket: %+v, want 7 records handled (the zero pid is dropped before), 1 registered, 6 refused", st)
	}
}

// orphan starts a sleep whose parent exits at once: it is reparented
// away from the test. The cleanup kills it by pidfd.
func orphan(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	p := open(t, pid)
	t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL) })
	return pid
}

// The quotas apply as on the agent's socket: a REGISTER past groups_total
// (which binds root too) is refused and logged, and its child is left
// where it was.
func TestCompatQuota(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.GroupsTotal = 1
	ca := startCompatAgentWith(t, cfg)
	c := dial(t, ca.sock)
	p1, c1, _ := family(t)
	p2, c2, _ := family(t)
	compatSend(t, ca.compatSock, reg(p1, c1)) // one after the other: workers take records in any order
	compatSend(t, ca.compatSock, reg(p2, c2))
	gs := compatGroups(c)
	if len(gs) != 1 || gs[0].Spawner.Pid != p1 {
		t.Fatalf("compat groups %+v, want only the first pair's", gs)
	}
	if !strings.Contains(ca.log.String(), "limit=groups_total") {
		t.Error("the refusal over the quota is not logged with its limit")
	}
	if origin, _ := ca.placeOf(c2); strings.Contains(origin, ca.root[strings.LastIndex(ca.root, "/"):]) {
		t.Errorf("the refused child was moved into the agent's tree (%s)", origin)
	}
}

// A compat REGISTER of a child inside a subtree group nests in it: killing
// the enclosing group kills the compat group too.
func TestCompatNestsInEnclosingGroup(t *testing.T) {
	ca := startCompatAgent(t)
	events := subscribe(t, ca.testAgent, "")
	c := dial(t, ca.sock)
	sh, gate := gatedShell(t, `read x; sleep 300 & wait`)
	outer := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	child := waitChildren(t, sh.Process.Pid, 1)[0]
	compatSend(t, ca.compatSock, reg(sh.Process.Pid, child))
	gs := compatGroups(c)
	if len(gs) != 1 || gs[0].Parent != outer.ID || !strings.HasPrefix(gs[0].Cgroup, outer.Cgroup+"/") {
		t.Fatalf("compat group %+v, want it nested in %s (%s)", gs, outer.ID, outer.Cgroup)
	}
	held := open(t, child)
	c.ok(ipc.Request{Op: ipc.OpKill, Group: outer.ID})
	ev := events.waitEvent(ipc.EventKilling, gs[0].ID)
	if ev.Reason != "parent" {
		t.Errorf("the nested compat group's killing event: %+v", ev)
	}
	waitExit(t, held)
}

// A compat group survives a restart of the agent: an UNREGISTER after it
// still finds its pair, and a parent that died while no agent ran has its
// child killed at the next start.
func TestCompatRestart(t *testing.T) {
	r := newRestartable(t, true)
	csock := filepath.Join(t.TempDir(), "compat.sock")
	r.options = func() []Option {
		_ = os.Remove(csock)
		ln, err := net.Listen("unix", csock)
		if err != nil {
			t.Fatal(err)
		}
		return []Option{WithCompat(CompatConfig{Listener: ln, Signal: syscall.SIGTERM})}
	}
	r.start()
	p1, c1, _ := family(t)
	p2, c2, k2 := family(t)
	compatSend(t, csock, reg(p1, c1), reg(p2, c2))
	held := append(openAll(t, k2), open(t, c2))
	ta := r.restart(func() {
		if err := syscall.Kill(p2, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
	for _, h := range held {
		waitExit(t, h) // killed at start: its parent died meanwhile
	}
	c := dial(t, ta.sock)
	var kept ipc.Group
	for _, g := range compatGroups(c) {
		if g.Spawner.Pid == p1 {
			kept = g
		}
	}
	if kept.State != ipc.StateActive || kept.Signal != "SIGTERM" || len(kept.Targets) != 1 || kept.Targets[0].Pid != c1 {
		t.Fatalf("the live parent's group after the restart: %+v", kept)
	}
	compatSend(t, csock, unreg(p1, c1))
	waitState(t, c, kept.ID, ipc.StateReleased)
}
