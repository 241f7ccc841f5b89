package family

import (
	"maps"
	"slices"
)

// The master's read methods see what ProcessChildData processed or Collect
// handed over. Returned byte slices are the master's own copy, shared with
// later calls: read them, do not modify them.

// FromCID returns the last value child cid sent under key.
func (m *Master) FromCID(cid int, key string) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.view.recs[cid]
	if r == nil {
		return nil, false
	}
	v, ok := r.values[key]
	return v, ok
}

// FromChild returns the last value sent under key by the child called name.
// When several children share the name, the newest (highest CID) one that
// sent key wins.
func (m *Master) FromChild(name, key string) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.view.byChild(name, key, false)
	if r == nil {
		return nil, false
	}
	return r.values[key], true
}

// PopFromCID removes and returns the oldest element of child cid's queue key.
func (m *Master) PopFromCID(cid int, key string) ([]byte, bool) {
	return first(m.popCID(cid, key, false))
}

// PopAllFromCID removes and returns every element of child cid's queue key,
// oldest first (nil when it is empty).
func (m *Master) PopAllFromCID(cid int, key string) [][]byte {
	return m.popCID(cid, key, true)
}

// PopFromChild is PopFromCID for the newest child called name that has
// elements queued under key.
func (m *Master) PopFromChild(name, key string) ([]byte, bool) {
	return first(m.popChild(name, key, false))
}

// PopAllFromChild is PopAllFromCID for the newest child called name that
// has elements queued under key.
func (m *Master) PopAllFromChild(name, key string) [][]byte {
	return m.popChild(name, key, true)
}

func (m *Master) popCID(cid int, key string, all bool) [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view.pop(m.view.recs[cid], key, all)
}

func (m *Master) popChild(name, key string, all bool) [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view.pop(m.view.byChild(name, key, true), key, all)
}

func first(q [][]byte) ([]byte, bool) {
	if len(q) == 0 {
		return nil, false
	}
	return q[0], true
}

// RunningChildren returns the CIDs of children that said hello and have
// not disconnected, in CID order.
func (m *Master) RunningChildren() []int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.view.children(false)
}

// FinishedChildren returns the CIDs of children that disconnected and were
// not cleared with ClearFinishedChildren, in CID order.
func (m *Master) FinishedChildren() []int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.view.children(true)
}

// RunningChildrenNames maps the CID of each running child to its name.
func (m *Master) RunningChildrenNames() map[int]string { return m.names(false) }

// FinishedChildrenNames maps the CID of each finished child to its name.
func (m *Master) FinishedChildrenNames() map[int]string { return m.names(true) }

func (m *Master) names(finished bool) map[int]string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[int]string{}
	for _, cid := range m.view.children(finished) {
		out[cid] = m.view.recs[cid].info.Name
	}
	return out
}

// Child returns what the master knows of child cid, while it is running,
// listed as finished, or holding data.
func (m *Master) Child(cid int) (ChildInfo, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.view.recs[cid]
	if r == nil {
		return ChildInfo{}, false
	}
	return r.info, true
}

// Keys returns the keys child cid has values and non-empty queues under.
func (m *Master) Keys(cid int) (values, queues []string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.view.recs[cid]
	if r == nil {
		return nil, nil
	}
	return sortedKeys(r.values), sortedKeys(r.queues)
}

func sortedKeys[V any](mp map[string]V) []string {
	return slices.Sorted(maps.Keys(mp))
}

// ClearFinishedChildren takes the given children (every finished child when
// none are given) off the finished list. Their data stays readable until
// ClearChildData. Running children are not affected. With a data handler,
// only the master's state changes, as in the seed.
func (m *Master) ClearFinishedChildren(cids ...int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.view.clearFinished(cids)
}

// ClearChildData drops the values and queues of the given children (of
// every child when none are given), freeing their memory.
func (m *Master) ClearChildData(cids ...int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.view.clearData(cids)
}
