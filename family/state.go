package family

import (
	"maps"
	"slices"
)

// ChildInfo describes one child as the master knows it.
type ChildInfo struct {
	CID  int    // unique per master, from 0 in the order of hellos
	Name string // the child's symbolic name (default: its pid)
	PID  int    // the peer's pid when it connected (SO_PEERCRED), 0 if unknown
	// Running is true from the hello until the connection ends.
	Running bool
	// Err says why the connection ended when it did not end cleanly at a
	// frame boundary (the child died mid-frame, broke a limit, stalled…).
	// The frame it was sending is dropped; everything before it was kept.
	Err error
}

// eventKind is what happened on a child's connection.
type eventKind uint8

const (
	evHello eventKind = iota
	evSet
	evPush
	evBye
)

// event is one thing a connection reader hands to the consumer (the caller
// of ProcessChildData, or the data handler). Events of one child arrive in
// the order the child sent them.
type event struct {
	kind  eventKind
	child ChildInfo // CID, Name and PID; Err for evBye
	key   string
	value []byte
	cost  int64 // bytes reserved in the budget for key and value
}

func (e event) packet() Packet {
	switch e.kind {
	case evHello:
		return PacketChildHello
	case evBye:
		return PacketChildDisconnected
	}
	return PacketData
}

// record is a child with its data.
type record struct {
	info     ChildInfo
	finished bool // ended and still on the finished list
	values   map[string][]byte
	queues   map[string][][]byte
}

func (r *record) empty() bool {
	return !r.info.Running && !r.finished && len(r.values) == 0 && len(r.queues) == 0
}

// state is a set of child records: the master's visible state, or the data
// handler's gathered one. It is not safe for concurrent use; its owner
// locks.
type state struct {
	b      *budget
	recs   map[int]*record
	byName map[string]map[int]struct{}
}

func newState(b *budget) *state {
	return &state{b: b, recs: map[int]*record{}, byName: map[string]map[int]struct{}{}}
}

// record returns the record for ci.CID, making a running one if needed.
func (s *state) record(ci ChildInfo) *record {
	if r := s.recs[ci.CID]; r != nil {
		return r
	}
	s.b.charge(recordOverhead + int64(len(ci.Name)))
	ci.Running, ci.Err = true, nil
	r := &record{info: ci, values: map[string][]byte{}, queues: map[string][][]byte{}}
	s.insert(r)
	return r
}

func (s *state) insert(r *record) {
	s.recs[r.info.CID] = r
	set := s.byName[r.info.Name]
	if set == nil {
		set = map[int]struct{}{}
		s.byName[r.info.Name] = set
	}
	set[r.info.CID] = struct{}{}
}

// dropIfEmpty forgets r once it is neither running, nor listed as
// finished, nor holding data.
func (s *state) dropIfEmpty(r *record) {
	if !r.empty() || s.recs[r.info.CID] != r {
		return
	}
	s.remove(r)
	s.b.release(recordOverhead + int64(len(r.info.Name)))
}

func (s *state) remove(r *record) {
	delete(s.recs, r.info.CID)
	if set := s.byName[r.info.Name]; set != nil {
		delete(set, r.info.CID)
		if len(set) == 0 {
			delete(s.byName, r.info.Name)
		}
	}
}

// apply records one event and returns the packet it stands for.
func (s *state) apply(e event) Packet {
	r := s.record(e.child)
	switch e.kind {
	case evSet:
		if old, ok := r.values[e.key]; ok {
			s.b.release(entryCost(e.key, old))
		}
		r.values[e.key] = e.value
	case evPush:
		r.queues[e.key] = append(r.queues[e.key], e.value)
	case evBye:
		r.info.Running, r.info.Err, r.finished = false, e.child.Err, true
	}
	return e.packet()
}

// merge moves everything in src into s: src's newer values win, its queue
// elements go after s's, and children that ended in src end in s. src is
// left empty.
func (s *state) merge(src *state) {
	for _, cid := range slices.Sorted(maps.Keys(src.recs)) {
		in := src.recs[cid]
		src.remove(in)
		r := s.recs[cid]
		if r == nil {
			s.insert(in)
			continue
		}
		s.b.release(recordOverhead + int64(len(in.info.Name)))
		if !in.info.Running {
			r.info.Running, r.info.Err, r.finished = false, in.info.Err, true
		}
		for k, v := range in.values {
			if old, ok := r.values[k]; ok {
				s.b.release(entryCost(k, old))
			}
			r.values[k] = v
		}
		for k, q := range in.queues {
			r.queues[k] = append(r.queues[k], q...)
		}
	}
}

// byChild returns the record of the newest child called name that holds
// key, by value (queue false) or in a queue (queue true). The seed returned
// "one at random" when names were reused; the newest is predictable.
func (s *state) byChild(name, key string, queue bool) *record {
	var best *record
	for cid := range s.byName[name] {
		r := s.recs[cid]
		has := false
		if queue {
			has = len(r.queues[key]) > 0
		} else {
			_, has = r.values[key]
		}
		if has && (best == nil || cid > best.info.CID) {
			best = r
		}
	}
	return best
}

// pop removes and returns the oldest (all false) or every (all true)
// element of r's queue key.
func (s *state) pop(r *record, key string, all bool) [][]byte {
	if r == nil {
		return nil
	}
	q := r.queues[key]
	if len(q) == 0 {
		return nil
	}
	n := 1
	if all {
		n = len(q)
	}
	out := slices.Clone(q[:n])
	clear(q[:n]) // let the popped values be collected
	if n == len(q) {
		delete(r.queues, key)
	} else {
		r.queues[key] = q[n:]
	}
	for _, v := range out {
		s.b.release(entryCost(key, v))
	}
	s.dropIfEmpty(r)
	return out
}

// children returns the CIDs of running (finished false) or listed finished
// (finished true) children, in CID order.
func (s *state) children(finished bool) []int {
	out := []int{}
	for cid, r := range s.recs {
		if (finished && r.finished) || (!finished && r.info.Running) {
			out = append(out, cid)
		}
	}
	slices.Sort(out)
	return out
}

// clearFinished takes the given children (all when none given) off the
// finished list; their data stays until clearData.
func (s *state) clearFinished(cids []int) {
	for _, r := range s.pick(cids) {
		r.finished = false
		s.dropIfEmpty(r)
	}
}

// clearData drops the values and queues of the given children (all when
// none given).
func (s *state) clearData(cids []int) {
	for _, r := range s.pick(cids) {
		for k, v := range r.values {
			s.b.release(entryCost(k, v))
		}
		for k, q := range r.queues {
			for _, v := range q {
				s.b.release(entryCost(k, v))
			}
		}
		r.values, r.queues = map[string][]byte{}, map[string][][]byte{}
		s.dropIfEmpty(r)
	}
}

func (s *state) pick(cids []int) []*record {
	if len(cids) == 0 {
		return slices.Collect(maps.Values(s.recs))
	}
	out := make([]*record, 0, len(cids))
	for _, cid := range cids {
		if r := s.recs[cid]; r != nil {
			out = append(out, r)
		}
	}
	return out
}
