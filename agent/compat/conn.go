package compat

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/orphand/orphand/agent/internal/wire"
	"github.com/orphand/orphand/ipc"
)

// conn is one client connection. Its goroutine reads records and queues
// them; it never handles one itself, so that a client sending many records
// is read as fast as it writes.
type conn struct {
	s        *Server
	nc       net.Conn
	peer     *Peer
	log      *slog.Logger
	seq      uint64 // Seq.Conn of its records
	admitted func() // uncounts the connection
	clock    *wire.Deadline

	inflight sync.WaitGroup // its records queued or being handled
}

// newClock keeps the connection's read deadline: idle between records,
// and a record begun must arrive whole within record.
func newClock(nc net.Conn, idle, record time.Duration) *wire.Deadline {
	return wire.NewDeadline(nc, idle, record)
}

func (c *conn) stopReading() { c.clock.Stop() }

// serve reads records until the stream ends, the client breaks the
// protocol, or the server stops.
func (c *conn) serve() {
	defer c.end()
	rr := NewReader(c.nc)
	rr.BeforeRead = c.clock.BeforeRead
	c.clock.Arm(false)
	for n := uint64(0); ; n++ {
		rec, err := rr.Next()
		if err != nil {
			c.ended(err)
			return
		}
		c.clock.Arm(false)
		if !c.take(rec, Seq{Conn: c.seq, Record: n}) {
			return
		}
	}
}

// take acts on one record and reports whether to read on.
func (c *conn) take(rec Record, seq Seq) bool {
	if err := rec.Check(); err != nil {
		if errors.Is(err, ErrUnknownAction) {
			c.s.dropped(c.log, c.peer.UID, "compat_unknown_action",
				"compat: record with an unknown action dropped, and the connection closed (the stream is out of step or not this protocol)", "err", err)
			return false
		}
		c.s.dropped(c.log, c.peer.UID, "compat_bad_pid", "compat: record dropped", "err", err)
		return true
	}
	if rec.Action == ActionPing {
		return c.echo(rec)
	}
	c.peer.hold()
	c.inflight.Add(1)
	if !c.s.submit(job{r: Request{Peer: c.peer, Record: rec, Seq: seq}, done: c.inflight.Done}) {
		c.peer.release()
		c.inflight.Done()
		c.log.Info("compat: the agent is stopping; a record read was not handled", "action", rec.Action,
			"parent", rec.Parent, "child", rec.Child)
		return false
	}
	return true
}

// echo answers a PING once every record sent before it on this connection
// has been handled, as the original daemon, which handled records one at a
// time, did: a client that needs to know its REGISTER took effect PINGs.
func (c *conn) echo(rec Record) bool {
	c.inflight.Wait()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	if _, err := c.nc.Write(rec.Append(make([]byte, 0, RecordSize))); err != nil {
		c.log.Debug("compat: PING echo failed; closing the connection", "err", err)
		return false
	}
	return true
}

// ended logs why reading stopped, when the client is to blame.
func (c *conn) ended(err error) {
	var short *ShortError
	switch limit := c.clock.Expired(err); {
	case errors.Is(err, io.EOF):
	case errors.As(err, &short):
		c.s.dropped(c.log, c.peer.UID, "compat_short_record",
			"compat: the connection ended in the middle of a record; the partial record is dropped", "bytes", short.N)
	case limit == ipc.LimitLineTimeout:
		c.s.dropped(c.log, c.peer.UID, "compat_record_timeout",
			"compat: a record begun did not arrive whole in time; it is dropped and the connection closed", "timeout", c.s.cfg.RecordTimeout)
	case limit == ipc.LimitIdleTimeout:
		c.log.Debug("compat: closing an idle connection", "timeout", c.s.cfg.IdleTimeout)
	default:
		c.log.Debug("compat: connection ended", "err", err)
	}
}

// end closes the connection; records it queued keep its peer until they
// are handled.
func (c *conn) end() {
	c.s.forget(c)
	c.nc.Close()
	c.admitted()
	c.peer.release()
}
