package compat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orphand/orphand/agent/internal/ratelog"
	"github.com/orphand/orphand/internal/peercred"
	"github.com/orphand/orphand/proctree"
)

// Handler is what the server hands records to: the agent.
type Handler interface {
	// Admit counts a new connection of p against the connection quotas,
	// and returns the function that uncounts it when the connection ends,
	// or the error it was refused with (which is logged).
	Admit(p *Peer) (release func(), err error)
	// Handle handles one REGISTER or UNREGISTER, on one of the server's
	// workers; many run at once. It must return when the agent stops.
	Handle(r Request)
}

// Config tunes a Server.
type Config struct {
	Log   *slog.Logger     // required
	Peers *peercred.Reader // required: reads each connection's peer
	// IdleTimeout closes a connection with no record for this long (zero:
	// never); RecordTimeout one that began a record and did not finish it
	// within this (zero: never). Neither matters to a client that writes
	// whole records.
	IdleTimeout, RecordTimeout time.Duration
	// WriteTimeout bounds the write of a PING's echo to a client that does
	// not read.
	WriteTimeout time.Duration
	// Workers is how many records are handled at once; Queue how many may
	// wait for a worker before readers wait too.
	Workers, Queue int
}

// Server serves the protocol. Make one with [NewServer]; [Server.Serve]
// runs it, once.
type Server struct {
	cfg   Config
	h     Handler
	limit ratelog.Limiter // logs of dropped input, per uid and reason

	queue   chan job
	stopped chan struct{} // closed when Serve's context ends
	conns   atomic.Uint64 // connections accepted, for Seq

	mu   sync.Mutex
	open map[*conn]struct{} // connections being read
}

// job is a record waiting for a worker, and its connection's count of
// records in flight (for PING).
type job struct {
	r    Request
	done func()
}

// NewServer returns a server handing records to h.
func NewServer(cfg Config, h Handler) (*Server, error) {
	switch {
	case cfg.Log == nil || cfg.Peers == nil || h == nil:
		return nil, errors.New("compat: NewServer needs a logger, a peer reader and a handler")
	case cfg.Workers < 1 || cfg.Queue < 1:
		return nil, fmt.Errorf("compat: workers (%d) and queue (%d) must be at least 1", cfg.Workers, cfg.Queue)
	case cfg.IdleTimeout < 0 || cfg.RecordTimeout < 0 || cfg.WriteTimeout <= 0:
		return nil, errors.New("compat: timeouts must not be negative, and the write timeout must be set")
	}
	return &Server{
		cfg: cfg, h: h,
		queue:   make(chan job, cfg.Queue),
		stopped: make(chan struct{}),
		open:    map[*conn]struct{}{},
	}, nil
}

// Serve accepts connections on ln until ctx ends, then stops: it closes
// ln, stops reading every connection, lets the workers handle the records
// already read, and returns once every goroutine it started has ended (the
// handler decides how long a record in progress may take). It returns nil
// after a stop by ctx, or the error that ended accepting.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var workers, conns sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(s.work)
	}
	stopDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopDone)
		close(s.stopped)
		ln.Close()
		s.mu.Lock()
		for c := range s.open {
			c.stopReading()
		}
		s.mu.Unlock()
	})
	err := s.acceptLoop(ln, &conns)
	if !stop() {
		<-stopDone // ctx ended: the stop ran (or runs) and ends shortly
	} else {
		ln.Close() // accepting failed on its own: stop reading too
		s.mu.Lock()
		for c := range s.open {
			c.stopReading()
		}
		s.mu.Unlock()
		close(s.stopped)
	}
	conns.Wait()
	close(s.queue)
	workers.Wait()
	return err
}

// acceptLoop accepts until ln is closed. Temporary errors (EMFILE) are
// retried with a backoff. Peer credentials are read here, at once, rather
// than on the connection's goroutine: a client that writes its record and
// exits is then more likely to be caught alive.
func (s *Server) acceptLoop(ln net.Listener, conns *sync.WaitGroup) error {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.stopped:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("compat: listener closed: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Log.Error("compat: accept failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-s.stopped:
				return nil
			}
			continue
		}
		backoff = 0
		s.start(nc, proctree.BootTicks(), conns)
	}
}

// start reads nc's peer, admits it and serves it on a goroutine.
func (s *Server) start(nc net.Conn, accepted uint64, conns *sync.WaitGroup) {
	pc, err := s.cfg.Peers.Read(nc, accepted)
	if err != nil {
		s.cfg.Log.Warn("compat: rejecting a connection: cannot read its peer credentials", "err", err)
		nc.Close()
		return
	}
	p := newPeer(pc, accepted)
	log := s.cfg.Log.With("uid", pc.UID, "pid", pc.Pid)
	release, err := s.h.Admit(p)
	if err != nil {
		s.limit.Log(log, slog.LevelWarn, pc.UID, "compat_connection", "compat: connection refused; its records are lost", "err", err)
		nc.Close()
		p.release()
		return
	}
	c := &conn{s: s, nc: nc, peer: p, log: log, seq: s.conns.Add(1), admitted: release}
	c.clock = newClock(nc, s.cfg.IdleTimeout, s.cfg.RecordTimeout)
	s.mu.Lock()
	s.open[c] = struct{}{}
	s.mu.Unlock()
	select {
	case <-s.stopped: // the stop may have missed c
		c.stopReading()
	default:
	}
	conns.Go(c.serve)
}

// forget removes c from the open connections.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
}

// submit queues r for a worker, waiting while the queue is full; it
// reports false when the server stops first.
func (s *Server) submit(j job) bool {
	select {
	case s.queue <- j:
		return true
	case <-s.stopped:
		return false
	}
}

// work handles queued records until the queue is closed.
func (s *Server) work() {
	for j := range s.queue {
		s.h.Handle(j.r)
		j.r.Peer.release()
		j.done()
	}
}

// dropped logs input the server drops, at most once a minute per uid and
// reason (with the count since).
func (s *Server) dropped(log *slog.Logger, uid uint32, reason, msg string, args ...any) {
	s.limit.Log(log, slog.LevelWarn, uid, reason, msg, args...)
}
