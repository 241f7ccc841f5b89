package agent

import (
	"errors"
	"testing"
	"time"

	"github.com/orphand/orphand/agent/compat"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

func seq(conn uint64) compat.Seq { return compat.Seq{Conn: conn} }

func compatTestGroup(pair compatPair, owner uint32) *group {
	return &group{Record: Record{
		ID: "g", Kind: ipc.KindWatch, Origin: ipc.OriginCompat, State: ipc.StateActive, OwnerUID: owner,
		Spawner: proctree.Identity{Pid: pair.parent}, CompatChild: pair.child,
	}}
}

// The orders in which forkwait's two records of one child can reach the
// workers, and what each must come to.
func TestCompatPairsOrder(t *testing.T) {
	alice := policy.Caller{UID: 1000}
	pair := compatPair{100, 101}
	now := time.Now()

	t.Run("in order", func(t *testing.T) {
		var p compatPairs
		reg, prev, _ := p.beginLocked(pair, seq(1), alice.UID, now)
		g := compatTestGroup(pair, alice.UID)
		if reg == nil || prev != nil || p.endLocked(reg, g) {
			t.Fatal("a first REGISTER is taken and kept")
		}
		got, err := p.unregisterLocked(pair, seq(2), alice, now)
		if got != g || err != nil {
			t.Fatalf("UNREGISTER found %v, %v", got, err)
		}
	})

	t.Run("UNREGISTER during the registration", func(t *testing.T) {
		var p compatPairs
		reg, _, _ := p.beginLocked(pair, seq(1), alice.UID, now)
		if got, _ := p.unregisterLocked(pair, seq(2), alice, now); got != nil {
			t.Fatal("nothing to release yet")
		}
		if !p.endLocked(reg, compatTestGroup(pair, alice.UID)) {
			t.Fatal("the group made must be released at once")
		}
		if len(p.active) != 0 || len(p.inflight) != 0 {
			t.Fatalf("left: %+v %+v", p.active, p.inflight)
		}
	})

	t.Run("UNREGISTER before the REGISTER is begun", func(t *testing.T) {
		var p compatPairs
		if got, _ := p.unregisterLocked(pair, seq(2), alice, now); got != nil {
			t.Fatal("nothing to release")
		}
		if reg, _, why := p.beginLocked(pair, seq(1), alice.UID, now); reg != nil || why == "" {
			t.Fatal("a REGISTER sent before a handled UNREGISTER must be dropped")
		}
		// A new child that got the same pid, registered after: taken.
		if reg, _, _ := p.beginLocked(pair, seq(3), alice.UID, now); reg == nil {
			t.Fatal("a later REGISTER of the same pair is taken")
		}
	})

	t.Run("tombstones expire", func(t *testing.T) {
		var p compatPairs
		p.unregisterLocked(pair, seq(2), alice, now)
		if reg, _, _ := p.beginLocked(pair, seq(1), alice.UID, now.Add(compatTombTTL)); reg == nil {
			t.Fatal("an expired tombstone still drops REGISTERs")
		}
		if len(p.tombs) != 0 || len(p.tombQ) != 0 {
			t.Fatalf("tombstones left: %v", p.tombs)
		}
	})

	t.Run("another uid cannot cancel", func(t *testing.T) {
		var p compatPairs
		mallory := policy.Caller{UID: 1001}
		p.unregisterLocked(pair, seq(2), mallory, now)
		reg, _, _ := p.beginLocked(pair, seq(1), alice.UID, now)
		if reg == nil {
			t.Fatal("another uid's tombstone dropped alice's REGISTER")
		}
		p.unregisterLocked(pair, seq(3), mallory, now)
		g := compatTestGroup(pair, alice.UID)
		if p.endLocked(reg, g) {
			t.Fatal("another uid's UNREGISTER cancelled alice's registration")
		}
		got, err := p.unregisterLocked(pair, seq(4), mallory, now)
		var den *policy.Denied
		if got != nil || !errors.As(err, &den) {
			t.Fatalf("another uid's UNREGISTER: %v, %v", got, err)
		}
		if got, err := p.unregisterLocked(pair, seq(5), policy.Caller{UID: 0}, now); got != g || err != nil {
			t.Fatalf("root's UNREGISTER: %v, %v", got, err)
		}
	})

	t.Run("a stale UNREGISTER leaves a newer registration", func(t *testing.T) {
		var p compatPairs
		reg, _, _ := p.beginLocked(pair, seq(5), alice.UID, now)
		g := compatTestGroup(pair, alice.UID)
		p.endLocked(reg, g)
		if got, _ := p.unregisterLocked(pair, seq(4), alice, now); got != nil {
			t.Fatal("an UNREGISTER sent before the REGISTER released its group")
		}
	})

	t.Run("a duplicate in flight", func(t *testing.T) {
		var p compatPairs
		p.beginLocked(pair, seq(1), alice.UID, now)
		if reg, _, _ := p.beginLocked(pair, seq(2), alice.UID, now); reg != nil {
			t.Fatal("two registrations of one pair at once")
		}
	})
}

func TestCompatTombstonesBounded(t *testing.T) {
	var p compatPairs
	now := time.Now()
	for i := range compatTombMax + 10 {
		p.unregisterLocked(compatPair{i + 1, i + 2}, seq(uint64(i+1)), policy.Caller{UID: 1}, now)
	}
	if len(p.tombs) > compatTombMax || len(p.tombQ) > compatTombMax {
		t.Fatalf("%d tombstones kept", len(p.tombs))
	}
	if _, ok := p.tombs[compatKey{compatPair{1, 2}, 1}]; ok {
		t.Fatal("the oldest tombstone was kept over the bound")
	}
}
