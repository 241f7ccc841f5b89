package agent

import (
	"time"

	"github.com/orphand/orphand/agent/compat"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// compatPairs finds the group of a (parent, child) pair, and keeps an
// UNREGISTER from being lost when it overtakes its REGISTER.
//
// orphand-forkwait.so sends each record on a connection of its own: the
// REGISTER from fork(), the UNREGISTER from waitpid() once the child is
// reaped, often a few hundred microseconds later. Workers handle records
// concurrently, and a registration takes milliseconds (a cgroup made,
// processes moved, a record written), so the UNREGISTER is often handled
// before the REGISTER is done, or even begun. Records carry their order
// (compat.Seq: connections in the order they were accepted, records in the
// order read), and:
//
//   - an UNREGISTER leaves a tombstone (pair, uid, its Seq) for a while: a
//     REGISTER of that pair and uid sent before it, still to come, is
//     dropped;
//   - an UNREGISTER that finds the pair's REGISTER in progress (same uid,
//     sent before) marks it, and the registration releases its group the
//     moment it is made;
//   - else it releases the pair's group, if it was registered before it.
//
// Without this, a group would outlive its UNREGISTER and, when the parent
// died, kill what the child left behind although the parent had waited for
// it. Tombstones are per uid, so that another uid's UNREGISTER cannot
// cancel a registration it does not own.
//
// All of it is guarded by Agent.mu.
type compatPairs struct {
	active   map[compatPair]compatEntry // the latest group registered per pair
	inflight map[compatPair]*compatReg  // registrations in progress
	tombs    map[compatKey]compat.Seq   // UNREGISTERs seen, latest per pair and uid
	tombQ    []compatTomb               // the same, oldest first, for expiry
}

// compatPair is what a record names.
type compatPair struct{ parent, child int }

type compatKey struct {
	pair compatPair
	uid  uint32
}

type compatEntry struct {
	g   *group
	seq compat.Seq
}

// compatReg is a registration in progress.
type compatReg struct {
	pair      compatPair
	seq       compat.Seq
	uid       uint32
	cancelled bool // an UNREGISTER sent after it was handled meanwhile
}

type compatTomb struct {
	key compatKey
	seq compat.Seq
	at  time.Time
}

// Tombstones live long enough for the slowest REGISTER still queued behind
// its UNREGISTER (a full queue, slow registrations), and are bounded in
// number: past the bound the oldest go first.
const (
	compatTombTTL = time.Minute
	compatTombMax = 1 << 16
)

func (p *compatPairs) init() {
	if p.active == nil {
		p.active = map[compatPair]compatEntry{}
		p.inflight = map[compatPair]*compatReg{}
		p.tombs = map[compatKey]compat.Seq{}
	}
}

// indexLocked indexes the active compat groups among groups (those restore
// took over) and returns how many.
func (p *compatPairs) indexLocked(groups map[string]*group) int {
	p.init()
	n := 0
	for _, g := range groups {
		if g.Origin == ipc.OriginCompat && g.State == ipc.StateActive {
			pair := g.compatPair()
			if e, ok := p.active[pair]; !ok || e.g.Created.Before(g.Created) {
				p.active[pair] = compatEntry{g: g} // Seq zero: before every record of this agent
			}
			n++
		}
	}
	return n
}

// compatPair is the pair g was registered for.
func (g *group) compatPair() compatPair { return compatPair{g.Spawner.Pid, g.CompatChild} }

// beginLocked starts the registration of pair, unless an UNREGISTER sent
// after it was already handled (it returns nil and why). prev is the
// pair's active group, if any: the registration is a duplicate if prev's
// child still runs.
func (p *compatPairs) beginLocked(pair compatPair, seq compat.Seq, uid uint32, now time.Time) (reg *compatReg, prev *group, why string) {
	p.init()
	p.expireLocked(now)
	if t, ok := p.tombs[compatKey{pair, uid}]; ok && seq.Compare(t) < 0 {
		return nil, nil, "its UNREGISTER was handled first: the child was reaped"
	}
	if p.inflight[pair] != nil {
		return nil, nil, "a REGISTER of the same pair is being handled"
	}
	if e, ok := p.active[pair]; ok && e.g.State == ipc.StateActive {
		prev = e.g
	}
	reg = &compatReg{pair: pair, seq: seq, uid: uid}
	p.inflight[pair] = reg
	return reg, prev, ""
}

// endLocked ends reg with its group (nil: the registration failed) and
// reports whether the group must be released at once: an UNREGISTER came
// while it was made.
func (p *compatPairs) endLocked(reg *compatReg, g *group) (release bool) {
	if p.inflight[reg.pair] == reg {
		delete(p.inflight, reg.pair)
	}
	if g == nil {
		return false
	}
	if reg.cancelled {
		return true
	}
	p.active[reg.pair] = compatEntry{g: g, seq: reg.seq}
	return false
}

// unregisterLocked handles the bookkeeping of an UNREGISTER by caller and
// returns the group to release, if the pair has one registered before it.
// An UNREGISTER of another uid's group is refused (root may release any).
func (p *compatPairs) unregisterLocked(pair compatPair, seq compat.Seq, caller policy.Caller, now time.Time) (*group, error) {
	p.init()
	p.expireLocked(now)
	p.tombLocked(compatKey{pair, caller.UID}, seq, now)
	if reg := p.inflight[pair]; reg != nil && reg.seq.Compare(seq) < 0 && (reg.uid == caller.UID || caller.IsRoot()) {
		reg.cancelled = true
	}
	e, ok := p.active[pair]
	switch {
	case !ok:
		return nil, nil
	case e.g.State != ipc.StateActive:
		delete(p.active, pair)
		return nil, nil
	case e.seq.Compare(seq) > 0:
		return nil, nil // registered again after this UNREGISTER was sent
	}
	if err := policy.MayControl(caller, "unregister", e.g.ID, e.g.OwnerUID); err != nil {
		return nil, err
	}
	delete(p.active, pair)
	return e.g, nil
}

// forgetLocked drops g's entry when the registry forgets g.
func (p *compatPairs) forgetLocked(g *group) {
	if e, ok := p.active[g.compatPair()]; ok && e.g == g {
		delete(p.active, g.compatPair())
	}
}

// tombLocked records an UNREGISTER.
func (p *compatPairs) tombLocked(k compatKey, seq compat.Seq, now time.Time) {
	if t, ok := p.tombs[k]; ok && t.Compare(seq) >= 0 {
		return
	}
	p.tombs[k] = seq
	p.tombQ = append(p.tombQ, compatTomb{key: k, seq: seq, at: now})
	if len(p.tombQ) > compatTombMax {
		p.dropTombLocked()
	}
}

// expireLocked drops the tombstones older than compatTombTTL.
func (p *compatPairs) expireLocked(now time.Time) {
	for len(p.tombQ) > 0 && now.Sub(p.tombQ[0].at) >= compatTombTTL {
		p.dropTombLocked()
	}
}

// dropTombLocked drops the oldest tombstone (unless a newer UNREGISTER of
// the same key replaced it).
func (p *compatPairs) dropTombLocked() {
	t := p.tombQ[0]
	p.tombQ[0] = compatTomb{}
	p.tombQ = p.tombQ[1:]
	if s, ok := p.tombs[t.key]; ok && s == t.seq {
		delete(p.tombs, t.key)
	}
	if len(p.tombQ) == 0 {
		p.tombQ = nil // let the backing array go
	}
}
