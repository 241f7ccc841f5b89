package proc_test

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/proctree"
)

// TestNestedGroups: a group created with a Parent holds a descendant of
// the parent's spawner. The parent's Members include it; killing the
// nested group leaves the parent's own processes alone; killing the parent
// kills the nested group's processes too; removing the parent removes the
// nested group.
func TestNestedGroups(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *proc.Backend, _ mode) {
		c := ctx(t, time.Minute)
		// outer: sleep A; inner: sh B with sleep C.
		w := shell(t, "", `sleep 1000 & echo $!; sh -c 'sleep 1000 & echo $!; wait' & echo $!; wait`)
		kids := w.pids(t, 3) // A, then B and C in either order
		a := kids[0]
		parent, err := b.Create(c, cgroup.Spec{ID: "outer", Pids: []int{w.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		inner := kids[1]
		if d, _ := proctree.Descendants(kids[2]); len(d) > 0 {
			inner = kids[2] // B is the one with a child
		}
		// Its child, tracked in the outer group, comes along.
		child, err := b.Create(c, cgroup.Spec{ID: "inner", Parent: parent, Pids: []int{inner}})
		if err != nil {
			t.Fatal(err)
		}
		grandchild, err := b.Create(c, cgroup.Spec{ID: "innermost", Parent: child})
		if err != nil {
			t.Fatal(err)
		}
		refs, err := b.Groups(c)
		if err != nil || !slices.Equal(refs, []cgroup.Ref{{ID: "outer"}, {ID: "inner"}, {ID: "innermost"}}) {
			t.Errorf("Groups = %v, %v", refs, err)
		}
		all := members(t, parent)
		if len(all) != 4 {
			t.Errorf("outer Members = %v, want 4 (the nested group's included)", all)
		}
		in := members(t, child)
		if len(in) != 2 || !slices.Contains(in, inner) {
			t.Errorf("inner Members = %v, want %d and its child", in, inner)
		}
		if id, _ := b.GroupOf(inner); id != "inner" {
			t.Errorf("GroupOf(%d) = %q, want inner (moved by Create)", inner, id)
		}
		heldIn := hold(t, in)
		if _, err := child.Kill(c, cgroup.KillOptions{}); err != nil {
			t.Fatal(err)
		}
		assertExited(t, heldIn)
		if got := members(t, parent); !slices.Equal(got, sorted(w.pid(), a)) {
			t.Errorf("outer Members after the inner kill = %v, want %v", got, sorted(w.pid(), a))
		}

		// A new nested group, killed through its parent this time.
		w2 := shell(t, w.rel, `exec sleep 1000`)
		if err := parent.Attach(c, w2.pid()); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Create(c, cgroup.Spec{ID: "inner2", Parent: parent, Pids: []int{w2.pid()}}); err != nil {
			t.Fatal(err)
		}
		held := hold(t, members(t, parent))
		res, err := parent.Kill(c, cgroup.KillOptions{})
		if err != nil || res.Killed != 3 {
			t.Errorf("outer Kill = %+v, %v; want 3 (the nested group's included)", res, err)
		}
		assertExited(t, held)
		if err := parent.Remove(c); err != nil {
			t.Fatal(err)
		}
		if refs, _ := b.Groups(c); len(refs) != 0 {
			t.Errorf("Groups after removing the outer group = %v", refs)
		}
		if _, err := b.Load(c, cgroup.Ref{ID: "innermost"}); !errors.Is(err, cgroup.ErrNotFound) {
			t.Errorf("Load(innermost) after removing its ancestor: %v", err)
		}
		if _, err := grandchild.Members(c); !errors.Is(err, cgroup.ErrNotFound) {
			t.Errorf("Members of a removed group: %v", err)
		}
		if _, err := grandchild.Kill(c, cgroup.KillOptions{}); !errors.Is(err, cgroup.ErrNotFound) {
			t.Errorf("Kill of a removed group: %v", err)
		}
	})
}

// TestGrace: a polite signal that ends the group is reported as such; a
// member that ignores it is SIGKILLed after the grace, stopped members
// included.
func TestGrace(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *proc.Backend, _ mode) {
		c := ctx(t, time.Minute)
		polite := shell(t, "", `exec sleep 1000`)
		g, err := b.Create(c, cgroup.Spec{ID: "polite", Pids: []int{polite.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := g.Kill(c, cgroup.KillOptions{Grace: 30 * time.Second, Signal: syscall.SIGTERM})
		if err != nil || res.Method != proc.MethodSignal || res.Killed != 1 {
			t.Errorf("Kill = %+v, %v; want 1 ended by the signal", res, err)
		}
		_ = polite.cmd.Wait()
		if ws := polite.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGTERM {
			t.Errorf("polite member ended with %v, want SIGTERM", polite.cmd.ProcessState)
		}

		// Ignores SIGTERM (an ignored signal stays ignored across exec);
		// its child is stopped and must still be killed.
		stubborn := shell(t, "", `trap "" TERM; sleep 1000 & echo $!; wait`)
		kid := stubborn.pids(t, 1)[0]
		if err := syscall.Kill(kid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		g2, err := b.Create(c, cgroup.Spec{ID: "stubborn", Pids: []int{stubborn.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		held := hold(t, []int{stubborn.pid(), kid})
		res, err = g2.Kill(c, cgroup.KillOptions{Grace: 200 * time.Millisecond})
		if err != nil || res.Method != proc.MethodPidfd || res.Killed != 2 {
			t.Errorf("Kill = %+v, %v; want 2 killed by pidfd after the grace", res, err)
		}
		assertExited(t, held)
	})
}

// TestEmptyAndGone: a group whose processes all exited on their own kills
// nothing; Remove forgets a group but leaves its processes alone.
func TestEmptyAndGone(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *proc.Backend, _ mode) {
		c := ctx(t, time.Minute)
		w := shell(t, "", `read x`)
		g, err := b.Create(c, cgroup.Spec{ID: "short", Pids: []int{w.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		w.release(t)
		_ = w.cmd.Wait()
		res, err := g.Kill(c, cgroup.KillOptions{Grace: time.Second})
		if err != nil || res.Method != "" || res.Killed != 0 {
			t.Errorf("Kill of an emptied group = %+v, %v; want nothing done", res, err)
		}

		keep := shell(t, "", `sleep 1000 & echo $!; wait`)
		kid := keep.pids(t, 1)[0]
		g2, err := b.Create(c, cgroup.Spec{ID: "released", Pids: []int{keep.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		held := hold(t, []int{keep.pid(), kid})
		if err := g2.Remove(c); err != nil {
			t.Fatal(err)
		}
		if err := g2.Remove(c); err != nil {
			t.Errorf("second Remove: %v", err)
		}
		if _, ok := b.GroupOf(kid); ok {
			t.Errorf("pid %d still tracked after Remove", kid)
		}
		for _, p := range held {
			assertAlive(t, p, "Remove must leave processes alone")
		}
		if err := g2.Attach(c, kid); !errors.Is(err, cgroup.ErrNotFound) {
			t.Errorf("Attach to a removed group: %v", err)
		}
	})
}

// TestRefusals: bad ids, duplicates, foreign parents, vanished pids, and
// the agent itself and its ancestors.
func TestRefusals(t *testing.T) {
	b := openBackend(t, proc.Config{})
	c := ctx(t, 30*time.Second)
	for _, id := range []string{"", "..", "../x", "/", "a/b", "a\x00b", "A", "-a", strings.Repeat("a", 4096)} {
		if _, err := b.Create(c, cgroup.Spec{ID: id}); !errors.Is(err, cgroup.ErrInvalidID) {
			t.Errorf("Create(%.20q) = %v, want ErrInvalidID", id, err)
		}
	}
	if _, err := b.Create(c, cgroup.Spec{ID: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(c, cgroup.Spec{ID: "dup"}); !errors.Is(err, os.ErrExist) {
		t.Errorf("duplicate id: %v, want ErrExist", err)
	}
	other := openBackend(t, proc.Config{NoConnector: true})
	og, err := other.Create(c, cgroup.Spec{ID: "foreign"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(c, cgroup.Spec{ID: "x", Parent: og}); err == nil {
		t.Error("Create accepted a parent from another backend")
	}
	if _, err := b.Create(c, cgroup.Spec{ID: "gone", Pids: []int{1 << 30}}); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Create with a missing spawner: %v, want ErrProcessDone", err)
	}
	w := shell(t, "", "exec sleep 1000")
	g2, err := b.Create(c, cgroup.Spec{ID: "skips", Pids: []int{w.pid(), 1 << 30}})
	if err != nil || !slices.Equal(members(t, g2), []int{w.pid()}) {
		t.Errorf("Create with a spawner and a vanished pid: %v; want the spawner tracked", err)
	}
	if _, err := b.Load(c, cgroup.Ref{ID: "gone"}); !errors.Is(err, cgroup.ErrNotFound) {
		t.Errorf("a failed Create left a group: %v", err)
	}
	g, _ := b.Load(c, cgroup.Ref{ID: "dup"})
	for _, pid := range []int{os.Getpid(), os.Getppid(), 1} {
		if err := g.Attach(c, pid); err == nil {
			t.Errorf("Attach(%d) (the agent, its parent, init) succeeded", pid)
		}
	}
	if m := members(t, g); len(m) != 0 {
		t.Errorf("Members = %v", m)
	}
}

// TestLoadAfterRestart: a Ref carries the id only; the backend instance
// that made a group can Load it, and a new instance (an agent restart)
// knows nothing.
func TestLoadAfterRestart(t *testing.T) {
	b := openBackend(t, proc.Config{})
	c := ctx(t, 30*time.Second)
	w := shell(t, "", `exec sleep 1000`)
	g, err := b.Create(c, cgroup.Spec{ID: "keep", Pids: []int{w.pid()}})
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := json.Marshal(g.Ref())
	if string(blob) != `{"id":"keep"}` {
		t.Errorf("Ref = %s", blob)
	}
	g2, err := b.Load(c, g.Ref())
	if err != nil || g2 != g {
		t.Errorf("Load = %v, %v", g2, err)
	}
	if _, err := b.Load(c, cgroup.Ref{ID: "keep", Path: "/keep"}); !errors.Is(err, cgroup.ErrNotFound) {
		t.Errorf("Load with a cgroup path: %v", err)
	}
	restarted := openBackend(t, proc.Config{})
	if _, err := restarted.Load(c, g.Ref()); !errors.Is(err, cgroup.ErrNotFound) {
		t.Errorf("Load after a restart: %v, want ErrNotFound", err)
	}
	if refs, err := restarted.Groups(c); err != nil || len(refs) != 0 {
		t.Errorf("Groups after a restart = %v, %v", refs, err)
	}
}

// TestRecreateAfterRestart: after a restart the agent re-creates a group
// around its spawner, found again by identity. The spawner's descendants
// are walked again; one that double-forked while no agent watched is not
// found (the documented limitation).
func TestRecreateAfterRestart(t *testing.T) {
	forEachMode(t, func(t *testing.T, first *proc.Backend, m mode) {
		c := ctx(t, time.Minute)
		w := shell(t, "", `sleep 1000 & echo $!; read x; (setsid sleep 1000 & echo $!); read y`)
		kid := w.pids(t, 1)[0]
		g, err := first.Create(c, cgroup.Spec{ID: "survivor", Pids: []int{w.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		spawner := hold(t, []int{w.pid()})[0].Identity()
		if err := first.Close(); err != nil { // the agent goes down
			t.Fatal(err)
		}
		w.release(t)
		lost := w.pids(t, 1)[0]
		waitReparented(t, lost, w.pid())

		again := openBackend(t, m.cfg)
		p, err := proctree.OpenIdentity(spawner)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		g2, err := again.CreateWith(c, cgroup.Spec{ID: g.ID(), Pids: []int{12345}}, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := members(t, g2); !slices.Equal(got, sorted(w.pid(), kid)) {
			t.Errorf("Members = %v, want the spawner %d and its child %d (not %d, reparented meanwhile)", got, w.pid(), kid, lost)
		}
		assertAlive(t, p, "CreateWith must leave the caller's handle usable")
		if _, err := again.CreateWith(c, cgroup.Spec{ID: "self"}, hold(t, []int{os.Getpid()})...); err == nil {
			t.Error("CreateWith accepted the agent's own process")
		}
	})
}
