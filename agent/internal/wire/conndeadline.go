package wire

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/orphand/orphand/ipc"
)

// Deadline keeps a connection's read deadline: the idle limit from the
// last response (or the connect), shortened by the line limit once an
// unfinished line is buffered. Only the connection's goroutine changes the
// deadline, except Stop (the agent shutting down), which must win: mu
// orders the two so that a deadline set after a response can never undo
// a Stop.
type Deadline struct {
	nc   net.Conn
	idle time.Duration // zero: no idle limit
	line time.Duration // zero: no line limit

	mu        sync.Mutex // a leaf lock
	stopped   bool       // stop was called: the next read fails at once
	idleUntil time.Time  // zero: no idle limit now
	lineSince time.Time  // when the unfinished line's first bytes were seen; zero if none
}

// NewDeadline keeps nc's read deadline: a request must arrive within idle
// of the last response, and a line once begun must arrive whole within
// line. Zero disables a limit. Call Arm to start.
func NewDeadline(nc net.Conn, idle, line time.Duration) *Deadline {
	return &Deadline{nc: nc, idle: idle, line: line}
}

// Arm starts the idle limit anew, unless the connection is exempt (it
// waits on purpose), and forgets any line in progress.
func (k *Deadline) Arm(exempt bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.idleUntil = time.Time{}
	if !exempt && k.idle > 0 {
		k.idleUntil = time.Now().Add(k.idle)
	}
	k.lineSince = time.Time{}
	k.applyLocked()
}

// LineDone forgets the line in progress: the reader returned it.
func (k *Deadline) LineDone() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.lineSince.IsZero() {
		k.lineSince = time.Time{}
		k.applyLocked()
	}
}

// BeforeRead is the LineReader's hook: the first read that finds part of a
// line buffered starts that line's clock.
func (k *Deadline) BeforeRead(pending int) {
	if pending == 0 || k.line <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lineSince.IsZero() {
		k.lineSince = time.Now()
		k.applyLocked()
	}
}

func (k *Deadline) applyLocked() {
	if k.stopped {
		return
	}
	d := k.idleUntil
	if !k.lineSince.IsZero() {
		if end := k.lineSince.Add(k.line); d.IsZero() || end.Before(d) {
			d = end
		}
	}
	_ = k.nc.SetReadDeadline(d)
}

// Stop makes the next read fail at once, for good.
func (k *Deadline) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	_ = k.nc.SetReadDeadline(time.Unix(1, 0))
}

// Expired says which limit a failed read ran into, ipc.LimitLineTimeout
// or ipc.LimitIdleTimeout: "" when the read failed for another reason
// (EOF, a reset, Stop).
func (k *Deadline) Expired(err error) string {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return ""
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.stopped:
		return ""
	case !k.lineSince.IsZero() && !time.Now().Before(k.lineSince.Add(k.line)):
		return ipc.LimitLineTimeout
	}
	return ipc.LimitIdleTimeout
}
