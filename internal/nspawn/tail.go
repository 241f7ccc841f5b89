package nspawn

import (
	"bytes"
	"sync"
)

// tailBuffer keeps the last max bytes written to it: the console of a
// container that boots and shuts down is long, and only its end explains a
// failure.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines returns up to n complete trailing lines.
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(lastLines(t.buf, n))
}

// lastLines returns the last n lines of b (a trailing newline does not count
// as an empty line).
func lastLines(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	end := len(b)
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1 : end]
			}
		}
	}
	return b[:end]
}
