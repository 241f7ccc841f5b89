package proc_test

import (
	"os"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/proc"
)

// waitTracked waits until pid is tracked in group id, without asking the
// backend to walk (GroupOf does not).
func waitTracked(t *testing.T, b *proc.Backend, pid int, id string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if got, ok := b.GroupOf(pid); ok && got == id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not adopted into %s", pid, id)
		}
	}
}

// TestFallbackWalksOnExit: without the proc connector, the exit of a
// tracked process makes the backend walk its group again, which finds a
// child forked since.
func TestFallbackWalksOnExit(t *testing.T) {
	b := openBackend(t, proc.Config{NoConnector: true, RescanInterval: time.Hour})
	c := ctx(t, time.Minute)
	w := shell(t, "", `read x; sleep 1000 & echo $!; read y`)
	g, err := b.Create(c, cgroup.Spec{ID: "on-exit", Pids: []int{w.pid()}})
	if err != nil {
		t.Fatal(err)
	}
	short := shell(t, w.rel, `read x`)
	if err := g.Attach(c, short.pid()); err != nil {
		t.Fatal(err)
	}
	w.release(t)
	kid := w.pids(t, 1)[0]
	time.Sleep(50 * time.Millisecond) // nothing walks meanwhile: the interval is an hour
	if _, ok := b.GroupOf(kid); ok {
		t.Fatalf("pid %d adopted with no walk", kid)
	}
	short.release(t) // a tracked process exits
	waitTracked(t, b, kid, "on-exit")
}

// TestFallbackWalksPeriodically: without the proc connector and with no
// exits, the periodic walk finds a child forked after registration.
func TestFallbackWalksPeriodically(t *testing.T) {
	b := openBackend(t, proc.Config{NoConnector: true, RescanInterval: 20 * time.Millisecond})
	c := ctx(t, time.Minute)
	w := shell(t, "", `read x; sleep 1000 & echo $!; read y`)
	if _, err := b.Create(c, cgroup.Spec{ID: "periodic", Pids: []int{w.pid()}}); err != nil {
		t.Fatal(err)
	}
	w.release(t)
	waitTracked(t, b, w.pids(t, 1)[0], "periodic")
	if s := b.Stats(); s.Walks < 2 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestPlaceOf: the agent's "which group is this process in?" — a path of
// group ids. Follow finds a child forked moments ago even before any walk
// or event handling adopted it (the interval here is an hour).
func TestPlaceOf(t *testing.T) {
	forEachMode(t, func(t *testing.T, _ *proc.Backend, m mode) {
		cfg := m.cfg
		cfg.RescanInterval = time.Hour
		b := openBackend(t, cfg)
		c := ctx(t, time.Minute)
		w := shell(t, "", `read x; sh -c 'sleep 1000 & echo $!; wait' & echo $!; wait`)
		outer, err := b.Create(c, cgroup.Spec{ID: "outer", Pids: []int{w.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		inner, err := b.Create(c, cgroup.Spec{ID: "inner", Parent: outer})
		if err != nil {
			t.Fatal(err)
		}
		if p := inner.(*proc.Group).Place(); p != "/outer/inner" {
			t.Errorf("Place = %q", p)
		}
		w.release(t)
		kids := w.pids(t, 2)
		for _, kid := range kids {
			b.Follow(c, kid)
			if got := b.PlaceOf(kid); got != "/outer" {
				t.Errorf("PlaceOf(%d) = %q, want /outer", kid, got)
			}
		}
		if err := inner.Attach(c, kids[0]); err != nil {
			t.Fatal(err)
		}
		if got := b.PlaceOf(kids[0]); got != "/outer/inner" {
			t.Errorf("PlaceOf after Attach = %q", got)
		}
		b.Follow(c, os.Getpid())
		if got := b.PlaceOf(os.Getpid()); got != "" {
			t.Errorf("PlaceOf(self) = %q", got)
		}
	})
}
