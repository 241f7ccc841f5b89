package family

import "sync/atomic"

// Overheads charged to the memory budget on top of the bytes themselves, so
// that floods of empty values or of short-lived connections are bounded too.
const (
	entryOverhead  = 64  // one stored value or queue element
	recordOverhead = 256 // one child record
)

// budget counts the bytes the master holds for children against
// Options.MemoryLimit. Readers reserve before they allocate; whoever drops
// the bytes releases them.
type budget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes if they fit under the limit.
func (b *budget) reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// charge takes n bytes unconditionally: for bookkeeping that cannot be
// refused any more (a record made for an event already accepted).
func (b *budget) charge(n int64) { b.used.Add(n) }

func (b *budget) release(n int64) { b.used.Add(-n) }

func entryCost(key string, value []byte) int64 {
	return int64(len(key)+len(value)) + entryOverhead
}
