package proctree

// statusQueue is a bounded FIFO of statuses waiting for room in
// StatusChannel. It grows as needed up to max and shrinks back when empty,
// so an idle reaper holds no backlog memory.
type statusQueue struct {
	max  int
	buf  []ReapStatus
	head int
}

func (q *statusQueue) len() int { return len(q.buf) - q.head }

// push appends st and reports false, leaving the queue unchanged, when the
// queue already holds max statuses.
func (q *statusQueue) push(st ReapStatus) bool {
	if q.len() >= q.max {
		return false
	}
	if q.head > 0 && len(q.buf) == cap(q.buf) {
		// Reuse the consumed front before growing.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, st)
	return true
}

func (q *statusQueue) peek() ReapStatus { return q.buf[q.head] }

func (q *statusQueue) pop() ReapStatus {
	st := q.buf[q.head]
	q.buf[q.head] = ReapStatus{}
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = nil, 0
	}
	return st
}
