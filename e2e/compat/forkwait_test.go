package compat

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// family is what the spawner reported: the children it keeps, with the
// grandchild each started, and the children it waited for, with the
// daemon each left.
type family struct {
	parent              int
	kept, grandchildren []int
	waited, leftDaemons []int
	proc                *started
}

// startSpawner runs the spawner under orphand-forkwait.so, pointed at
// sock, and reads its report.
func startSpawner(t testing.TB, p programs, sock string, kept, waited int) *family {
	t.Helper()
	s := start(t, env(sock, "LD_PRELOAD="+p.forkwait), nil, p.spawner, strconv.Itoa(kept), strconv.Itoa(waited))
	f := &family{parent: s.cmd.Process.Pid, proc: s}
	ready := false
	for !ready || len(f.kept) < kept || len(f.waited) < waited { // the children's lines may follow "ready"
		fields := strings.Fields(s.line(t))
		if len(fields) == 2 && fields[0] == "ready" {
			ready = true
			continue
		}
		if len(fields) != 3 {
			t.Fatalf("spawner said %q", fields)
		}
		a, _ := strconv.Atoi(fields[1])
		b, _ := strconv.Atoi(fields[2])
		switch fields[0] {
		case "kept":
			f.kept, f.grandchildren = append(f.kept, a), append(f.grandchildren, b)
		case "waited":
			f.waited, f.leftDaemons = append(f.waited, a), append(f.leftDaemons, b)
		}
	}
	if len(f.kept) != kept || len(f.waited) != waited {
		t.Fatalf("spawner reported %d kept and %d waited children, want %d and %d", len(f.kept), len(f.waited), kept, waited)
	}
	return f
}

// records is how many records the library sent for f: a REGISTER per
// child, an UNREGISTER per child waited for.
func (f *family) records() uint64 { return uint64(len(f.kept) + 2*len(f.waited)) }

// The promise, as a user of orphand-forkwait.so sees it: a parent forks,
// is SIGKILLed, and every child it had not waited for dies with
// everything it started (grandchildren the library never saw: the agent
// holds each child's subtree in a cgroup). Children it waited for, and the
// daemons they left behind, live on.
func TestForkwaitParentKilled(t *testing.T) {
	const kept, waited = 8, 3
	a := startAgent(t, "")
	c := a.client(t)
	f := startSpawner(t, a.p, a.compat, kept, waited)
	st := a.waitRecords(t, c, f.records())
	if st.Registered < kept {
		t.Fatalf("status %+v: %d kept children, want each registered", st, kept)
	}
	doomed := hold(t, append(slices.Clone(f.kept), f.grandchildren...)...)
	daemons := hold(t, f.leftDaemons...)

	var active []ipc.Group
	for _, g := range compatGroups(t, c, f.parent) {
		switch {
		case g.State == ipc.StateActive:
			active = append(active, g)
			if len(g.Targets) != 1 || !slices.Contains(f.kept, g.Targets[0].Pid) || g.Cgroup == "" {
				t.Errorf("active compat group %+v is not one of a kept child's", g)
			}
		case g.State == ipc.StateReleased && len(g.Targets) == 1 && slices.Contains(f.waited, g.Targets[0].Pid):
		default:
			t.Errorf("compat group %+v", g)
		}
	}
	if len(active) != kept {
		t.Fatalf("%d active compat groups, want %d (one per kept child)", len(active), kept)
	}
	g, members, err := c.Show(context.Background(), active[0].ID)
	if err != nil || g.Members != 2 || len(members) != 2 {
		t.Errorf("a kept child's group has members %v (%+v, %v), want the child and its grandchild", members, g, err)
	}

	killed := time.Now()
	f.proc.kill(t)
	waitGone(t, "a child or grandchild of the killed parent", doomed)
	t.Logf("all %d children and %d grandchildren gone %v after the parent's SIGKILL", kept, kept, time.Since(killed))
	for _, g := range active {
		waitState(t, c, g.ID, ipc.StateDead)
	}
	for _, d := range daemons {
		if d.Exited() {
			t.Errorf("daemon %d, left by a child the parent had waited for, was killed", d.Pid())
		}
		_ = d.Signal(syscall.SIGKILL)
	}
	a.waitNoGroups(t) // the released groups' cgroups go once their daemons are gone
}

// waitState waits until the group reaches state.
func waitState(t testing.TB, c *ipc.Client, id, state string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		g, _, err := c.Show(context.Background(), id)
		if err == nil && g.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s is %+v (%v), want %s", id, g, err, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The original example: the Perl client spawns children, registers them,
// PINGs, and dies; its children die with it.
func TestPerlClient(t *testing.T) {
	a := startAgent(t, "")
	c := a.client(t)
	ping := start(t, env(a.compat), nil, "perl", a.p.client, "ping")
	if got := ping.line(t); got != "pong" {
		t.Fatalf("client.pl ping: %q", got)
	}
	s := start(t, env(a.compat), nil, "perl", a.p.client, "spawn", "3")
	fields := strings.Fields(s.line(t))
	if len(fields) != 5 || fields[0] != "ready" {
		t.Fatalf("client.pl spawn: %q", fields)
	}
	var kids []int
	for _, f := range fields[2:] {
		pid, _ := strconv.Atoi(f)
		kids = append(kids, pid)
	}
	held := hold(t, kids...)
	gs := compatGroups(t, c, s.cmd.Process.Pid) // PING answered: the REGISTERs before it are handled
	if len(gs) != 3 {
		t.Fatalf("compat groups %+v, want 3", gs)
	}
	s.kill(t)
	waitGone(t, "a child of the Perl client", held)
}
