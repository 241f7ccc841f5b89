package agent

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/orphand/orphand/ipc"
)

// readClock keeps a connection's read deadline: the idle limit from the
// last response (or the connect), shortened by the line limit once an
// unfinished line is buffered. Only the connection's goroutine changes the
// deadline, except stop (the agent shutting down), which must win: mu
// orders the two so that a deadline set after a response can never undo
// a stop.
type readClock struct {
	nc     net.Conn
	limits ConnLimits

	mu        sync.Mutex
	stopped   bool      // stop was called: the next read fails at once
	idleUntil time.Time // zero: no idle limit now
	lineSince time.Time // when the unfinished line's first bytes were seen; zero if none
}

// arm starts the idle limit anew, unless the connection is exempt (it
// waits on purpose), and forgets any line in progress.
func (k *readClock) arm(exempt bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.idleUntil = time.Time{}
	if !exempt && k.limits.IdleTimeout > 0 {
		k.idleUntil = time.Now().Add(k.limits.IdleTimeout)
	}
	k.lineSince = time.Time{}
	k.applyLocked()
}

// lineDone forgets the line in progress: the reader returned it.
func (k *readClock) lineDone() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.lineSince.IsZero() {
		k.lineSince = time.Time{}
		k.applyLocked()
	}
}

// beforeRead is the lineReader's hook: the first read that finds part of a
// line buffered starts that line's clock.
func (k *readClock) beforeRead(pending int) {
	if pending == 0 || k.limits.LineTimeout <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lineSince.IsZero() {
		k.lineSince = time.Now()
		k.applyLocked()
	}
}

func (k *readClock) applyLocked() {
	if k.stopped {
		return
	}
	d := k.idleUntil
	if !k.lineSince.IsZero() {
		if end := k.lineSince.Add(k.limits.LineTimeout); d.IsZero() || end.Before(d) {
			d = end
		}
	}
	_ = k.nc.SetReadDeadline(d)
}

// stop makes the next read fail at once, for good.
func (k *readClock) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	_ = k.nc.SetReadDeadline(time.Unix(1, 0))
}

// expired says which limit a failed read ran into: "" when the read failed
// for another reason (EOF, a reset, the agent stopping).
func (k *readClock) expired(err error) string {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return ""
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.stopped:
		return ""
	case !k.lineSince.IsZero() && !time.Now().Before(k.lineSince.Add(k.limits.LineTimeout)):
		return LimitLineTimeout
	}
	return LimitIdleTimeout
}

// idleExempt reports whether c waits on purpose: it streams events, or its
// close is the trigger of groups it registered.
func (c *conn) idleExempt() bool {
	if c.sub != nil {
		return true
	}
	c.a.mu.Lock()
	defer c.a.mu.Unlock()
	return len(c.onDisconnect) > 0
}

// overLimit tells the client which connection limit ended it, then the
// caller closes the connection.
func (c *conn) overLimit(limit string) {
	l := c.a.cfg.Conn
	switch limit {
	case LimitLineTimeout:
		c.a.limitLog.log(c.log, slog.LevelInfo, c.peer.caller.UID, limit,
			"closing a connection that sent part of a line and stalled", "timeout", l.LineTimeout)
		c.write(ipc.Response{Error: limitError(limit,
			"a request line must arrive whole within %v of its first byte; the connection is closed", l.LineTimeout)})
	case LimitIdleTimeout:
		c.log.Debug("closing an idle connection", "timeout", l.IdleTimeout)
		c.write(ipc.Response{Error: limitError(limit,
			"no request for %v; the connection is closed (connect again when you need the agent)", l.IdleTimeout)})
	}
}
