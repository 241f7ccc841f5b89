package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/orphand/orphand/agent/compat"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// The compatibility socket: the original orphand's 12-byte protocol
// (package compat reads it; docs/compat.md tells users how it maps). This
// file is its one entry into the agent — WithCompat, and the handler the
// compat server calls — and compat_register.go and compat_pairs.go are
// what a REGISTER and an UNREGISTER do.
//
// A REGISTER becomes a watch group (origin compat): the record's parent is
// the spawner, watched through its pidfd; the child is the one target, and
// the child with its descendants is placed in a cgroup of its own (a group
// of the backend, like a subtree group's), so that the parent's exit kills
// the child's whole subtree, not its pid. An UNREGISTER releases that
// group. Authorization, quotas, persistence, restore, events and list/show
// are those of every group.

// CompatConfig turns on the compatibility socket.
type CompatConfig struct {
	// Listener is the compatibility socket; the agent closes it when Run
	// returns.
	Listener net.Listener
	// Signal is the polite signal of compat groups (the original daemon
	// sent SIGINT); Config.DefaultGrace is their grace before SIGKILL.
	Signal syscall.Signal
}

// Compatibility socket tuning: records handled at once (a registration
// blocks in the kernel while it moves processes between cgroups), and
// records read ahead of the workers before readers wait.
const (
	compatWorkers = 16
	compatQueue   = 4096
)

// WithCompat serves the compatibility socket as well, from when Run serves
// until it stops.
func WithCompat(c CompatConfig) Option {
	return func(a *Agent) {
		if c.Signal == 0 {
			c.Signal = syscall.SIGINT
		}
		a.compat = &compatSide{cfg: c}
	}
}

// compatSide is the agent's state for the compatibility socket.
type compatSide struct {
	cfg  CompatConfig
	stop context.CancelFunc // ends the server's Serve

	records, registered, refused atomic.Uint64 // for status

	// Guarded by Agent.mu.
	conns int         // its open connections, counted with the agent's own
	pairs compatPairs // registrations by (parent, child)
}

// compatStatusLocked is the compatibility socket's part of status.
func (a *Agent) compatStatusLocked() *ipc.CompatStatus {
	s := a.compat
	if s == nil {
		return nil
	}
	return &ipc.CompatStatus{
		Connections: s.conns, Records: s.records.Load(), Registered: s.registered.Load(), Refused: s.refused.Load(),
	}
}

// startCompat starts the compatibility socket's server, counted by conns
// (Run waits for it as for connections), once restore has run: the pairs
// of the groups it took over are indexed first.
func (a *Agent) startCompat(conns *sync.WaitGroup) {
	s := a.compat
	if s == nil {
		return
	}
	srv, err := compat.NewServer(compat.Config{
		Log: a.log, Peers: a.host.peers,
		IdleTimeout: a.cfg.Conn.IdleTimeout, RecordTimeout: a.cfg.Conn.LineTimeout, WriteTimeout: a.cfg.WriteTimeout,
		Workers: compatWorkers, Queue: compatQueue,
	}, compatHandler{a})
	if err != nil { // a bug: the configuration is ours
		a.log.Error("the compatibility socket cannot be served", "err", err)
		s.cfg.Listener.Close()
		return
	}
	a.mu.Lock()
	n := s.pairs.indexLocked(a.groups)
	a.mu.Unlock()
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	conns.Go(func() {
		if err := srv.Serve(ctx, s.cfg.Listener); err != nil {
			a.log.Error("the compatibility socket stopped serving", "err", err)
		}
	})
	a.log.Info("serving the compatibility socket (the original orphand protocol)", "addr", s.cfg.Listener.Addr().String(),
		"signal", s.cfg.Signal.String(), "grace", a.cfg.DefaultGrace, "groups", n)
}

// stopCompat stops accepting and reading on the compatibility socket;
// records already read are still handled (Run waits for them).
func (a *Agent) stopCompat() {
	if a.compat != nil && a.compat.stop != nil {
		a.compat.stop()
	}
}

// compatHandler is the agent as the compat server's Handler.
type compatHandler struct{ a *Agent }

// Admit counts a compat connection against the agent's connection limits,
// together with the agent's own socket: the totals are what keep the agent
// within its file descriptors.
func (h compatHandler) Admit(p *compat.Peer) (func(), error) {
	a := h.a
	caller := compatCaller(p)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.countConnLocked(caller); err != nil {
		return nil, err
	}
	a.compat.conns++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.compat.conns--
		a.uncountConnLocked(caller.UID)
	}, nil
}

// Handle handles a REGISTER or UNREGISTER on one of the server's workers,
// within the agent's request context (it ends when the shutdown grace is
// over).
func (h compatHandler) Handle(r compat.Request) {
	switch r.Record.Action {
	case compat.ActionRegister:
		h.a.compatRegister(h.a.reqCtx, r)
	case compat.ActionUnregister:
		h.a.compatUnregister(h.a.reqCtx, r)
	}
	h.a.compat.records.Add(1)
}

// compatCaller is the policy's view of a compat peer.
func compatCaller(p *compat.Peer) policy.Caller {
	return policy.Caller{UID: p.UID, GID: p.GID, Pid: p.Pid}
}

// compatLog is the logger of one record.
func (a *Agent) compatLog(r compat.Request) *slog.Logger {
	return a.log.With("uid", r.Peer.UID, "pid", r.Peer.Pid, "action", r.Record.Action.String(),
		"parent", r.Record.Parent, "child", r.Record.Child)
}

// compatRefused logs a record the agent did not act on. The client gets no
// answer, so the log is the only place a refusal shows: every one at debug
// level; refusals by the policy and the quotas also as a warning, once a
// minute per uid and reason (with the count since); a process already gone
// is routine; anything else is an error.
func (a *Agent) compatRefused(log *slog.Logger, r compat.Request, err error) {
	a.compat.refused.Add(1)
	e := wireError(err)
	switch e.Code {
	case ipc.CodeNoSuchProcess:
		log.Debug("compat: record not acted on", "err", e.Message)
	case ipc.CodePermissionDenied, ipc.CodeLimitExceeded, ipc.CodeUnsupported, ipc.CodeBadRequest:
		reason := "compat_" + e.Code
		if e.Limit != "" {
			reason = e.Limit
		}
		log.Debug("compat: record refused", "err", e.Message, "reason", reason)
		a.limitLog.Log(log, slog.LevelWarn, r.Peer.UID, reason, "compat: records refused", "err", e.Message)
	default:
		if errors.Is(err, context.Canceled) {
			log.Info("compat: record not acted on: the agent is stopping", "err", err)
			return
		}
		log.Error("compat: record failed", "err", e.Message)
	}
}
