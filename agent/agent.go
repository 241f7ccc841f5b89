package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orphand/orphand/agent/internal/crashpoint"
	"github.com/orphand/orphand/agent/internal/ratelog"
	"github.com/orphand/orphand/agent/internal/workqueue"
	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/usage"
	"github.com/orphand/orphand/internal/version"
)

// Agent serves the orphand protocol. Create it with [New] and start it with
// [Agent.Run], once.
//
// Locking: mu guards the registry (groups, byPath, ended, lingering,
// unrecorded, the live counts), the connection and subscriber sets, the
// stopping flag, the queue of records to write (dirty) and every group's
// mutable fields. Functions that need it held end in "Locked".
//
// Lock order: persistMu, then mu, then the work queue's own lock (a kill
// is pushed onto it with mu held). While mu is held the agent does no I/O,
// takes no other lock but the work queue's, makes no call into the watcher
// (whose callback takes mu) and sends on channels only without blocking. The other locks — a
// connection's write lock, its read deadline's, the log rate limiter's,
// the Durable's — are never taken with mu held, nor mu with them.
type Agent struct {
	cfg      Config
	backend  cgroup.Backend
	log      *slog.Logger
	host     hostFacts
	features []string
	started  time.Time
	ran      atomic.Bool

	// Set by Run before the first connection is accepted, then read-only.
	watcher exitWatcher
	work    *workqueue.Queue // kills, on Config.ParallelKills workers
	killCtx context.Context  // ends when shutdown gives up waiting for kills
	reqCtx  context.Context  // ends when shutdown gives up waiting for requests

	durable     *Durable      // records and fd store; nil: nothing survives a restart
	persistKick chan struct{} // wakes persistLoop (capacity 1)
	persistMu   sync.Mutex    // held while records are written; taken before mu, never under it (lock order above)

	limitLog ratelog.Limiter // rate-limits the log lines of refused callers (its own lock)

	metrics   *metrics      // counters and gauges: status reads them, the metrics server serves them
	usage     *usage.Reader // groups' usage from their cgroups; nil: the backend has none
	metricsLn net.Listener  // where to serve them (WithMetrics); nil: not served

	mu         sync.Mutex
	groups     map[string]*group  // every group still known, any state
	byPath     map[string]*group  // subtree groups not ended, by place (cgroup path, or a cgroup.Placer's)
	ended      []*group           // dead and released groups, oldest first
	lingering  map[*group]linger  // ended groups whose cgroup is still to be removed
	live       liveCounts         // for the quotas
	conns      map[*conn]struct{} //
	connsByUID map[uint32]int     //
	subs       map[*subscriber]struct{}
	stopping   bool                     // Run is shutting down: no new kills from disconnects
	kick       chan struct{}            // wakes the sweeper (capacity 1)
	dirty      map[string]*pendingWrite // records queued for persistLoop, by group id
	unrecorded map[string]*group        // groups found under the backend's root with no record

	compat *compatSide // the compatibility socket (WithCompat); nil when off
}

// New checks cfg, probes the kernel features the agent relies on and
// returns an Agent that will use backend (which the caller owns and closes
// after Run returns). log must not be nil.
func New(cfg Config, backend cgroup.Backend, log *slog.Logger, opts ...Option) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if backend == nil || log == nil {
		return nil, errors.New("agent: New needs a backend and a logger")
	}
	host, err := probeHost(log)
	if err != nil {
		return nil, err
	}
	cfg.Limits = fitFileLimits(cfg, log)
	a := &Agent{
		cfg:        cfg,
		backend:    backend,
		log:        log,
		host:       host,
		groups:     map[string]*group{},
		byPath:     map[string]*group{},
		conns:      map[*conn]struct{}{},
		lingering:  map[*group]linger{},
		connsByUID: map[uint32]int{},
		subs:       map[*subscriber]struct{}{},
		kick:       make(chan struct{}, 1),
		dirty:      map[string]*pendingWrite{},
		unrecorded: map[string]*group{},

		persistKick: make(chan struct{}, 1),
	}
	a.metrics = newMetrics(host.started)
	a.usage = a.newUsageReader()
	for _, o := range opts {
		o(a)
	}
	a.features = a.featureList()
	return a, nil
}

// featureList names what this agent can do, for hello and status.
func (a *Agent) featureList() []string {
	f := []string{"subtree", "watch", "on_disconnect", "nesting", "subscribe", "pidfd"}
	if a.host.peers.Pidfd() {
		f = append(f, "SO_PEERPIDFD")
	}
	bf := a.backend.Features()
	if bf.Kill {
		f = append(f, "cgroup.kill")
	}
	if bf.Freeze {
		f = append(f, "cgroup.freeze")
	}
	if t, ok := a.backend.(cgroup.Tracker); ok {
		f = append(f, t.Tracking()) // the proc backend: how forks are followed
	}
	if a.cfg.Subreaper {
		f = append(f, "subreaper")
	}
	if a.durable != nil {
		f = append(f, "restart") // groups survive a restart of the agent
		if a.durable.fds != nil {
			f = append(f, "fdstore")
		}
	}
	if a.compat != nil {
		f = append(f, "compat") // the original orphand's protocol, on a socket of its own
	}
	if crashpoint.Enabled {
		f = append(f, "crashpoints") // a test build
	}
	return f
}

// Run serves connections from ln until ctx ends, then stops: it stops
// accepting (closing ln), lets requests and kills in flight finish for up
// to Config.ShutdownGrace, and returns only when every goroutine it started
// has ended. Registered groups are not killed on a normal stop: their
// spawners are still alive. With a [Durable] their records stay on disk
// and the next agent takes them over before it serves (see restore);
// without one they are forgotten.
//
// Run returns nil after a stop by ctx, or the error that made it stop.
func (a *Agent) Run(ctx context.Context, ln net.Listener) error {
	if !a.ran.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	defer ln.Close()
	if a.metricsLn != nil {
		defer a.metricsLn.Close() // closed already if it was served; not if Run failed first
	}
	if a.compat != nil {
		defer a.compat.cfg.Listener.Close()
	}
	a.started = time.Now()

	stopReaper, err := a.startReaper(ctx)
	if err != nil {
		return err
	}
	defer stopReaper()
	w, err := newExitWatcher()
	if err != nil {
		return fmt.Errorf("agent: start the spawner watcher: %w", err)
	}
	a.watcher = w
	killCtx, stopKills := context.WithCancel(context.WithoutCancel(ctx))
	defer stopKills()
	reqCtx, stopReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReqs()
	a.killCtx, a.reqCtx = killCtx, reqCtx
	a.work = workqueue.New()
	a.work.Start(a.cfg.ParallelKills)

	persistCtx, stopPersist := context.WithCancel(context.WithoutCancel(ctx))
	var persist sync.WaitGroup
	if a.durable != nil {
		persist.Go(func() { a.persistLoop(persistCtx) })
	}
	a.restore(ctx)

	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Go(func() { a.sweepLoop(sweepCtx) })

	stopMetrics := a.serveMetrics()

	var conns sync.WaitGroup
	a.startCompat(&conns)
	acceptErr := make(chan error, 1)
	bg.Go(func() { acceptErr <- a.acceptLoop(ln, &conns) })

	a.log.Info("agent serving", "addr", ln.Addr().String(), "version", version.String(),
		"backend", a.backend.Name(), "features", a.features)
	if a.cfg.OnReady != nil {
		a.cfg.OnReady()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-acceptErr:
	}
	a.shutdown(ln, &conns, stopReqs, stopKills)
	stopMetrics()
	stopSweep()
	bg.Wait()
	stopPersist() // writes what is still queued, then returns
	persist.Wait()
	a.closeAllHandles()
	if runErr == nil {
		a.log.Info("agent stopped")
	}
	return runErr
}

// shutdown stops accepting, drains connections and kills in flight within
// the shutdown grace, and closes the watcher.
func (a *Agent) shutdown(ln net.Listener, conns *sync.WaitGroup, stopReqs, stopKills context.CancelFunc) {
	deadline := time.Now().Add(a.cfg.ShutdownGrace)
	a.mu.Lock()
	a.stopping = true
	open := make([]*conn, 0, len(a.conns))
	for c := range a.conns {
		open = append(open, c)
	}
	a.mu.Unlock()
	ln.Close()
	a.log.Info("agent stopping", "connections", len(open), "grace", a.cfg.ShutdownGrace)

	for _, c := range open {
		c.stopReading() // a request being handled finishes; no new one is read
	}
	a.stopCompat() // records already read are still handled
	if !waitUntil(conns.Wait, deadline) {
		a.log.Warn("requests still running at the end of the shutdown grace; cancelling them")
		stopReqs()
		a.mu.Lock()
		for c := range a.conns {
			c.nc.Close()
		}
		a.mu.Unlock()
		conns.Wait()
	}
	if err := a.watcher.Close(); err != nil {
		a.log.Warn("closing the spawner watcher", "err", err)
	}
	if !waitUntil(a.work.Wait, deadline) {
		a.log.Warn("kills still running at the end of the shutdown grace; cancelling them (their groups stay in state killing)")
		stopKills()
		a.work.Wait()
	}
	a.work.Close()
}

// waitUntil calls wait (a WaitGroup's Wait) until deadline and reports
// whether it returned.
func waitUntil(wait func(), deadline time.Time) bool {
	done := make(chan struct{})
	go func() { wait(); close(done) }() // ends when wait does; the caller waits in any case
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// acceptLoop accepts connections until ln is closed. Temporary errors
// (EMFILE, ENFILE) are retried with a backoff instead of ending the agent.
func (a *Agent) acceptLoop(ln net.Listener, conns *sync.WaitGroup) error {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			a.mu.Lock()
			stopping := a.stopping
			a.mu.Unlock()
			if stopping || errors.Is(err, net.ErrClosed) {
				if !stopping {
					return fmt.Errorf("agent: listener closed: %w", err)
				}
				return nil
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			a.log.Error("accept failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		a.startConn(nc, conns)
	}
}

// closeAllHandles releases every pidfd the registry still holds, once Run
// no longer needs them.
func (a *Agent) closeAllHandles() {
	a.mu.Lock()
	var gs []*group
	for _, g := range a.groups {
		gs = append(gs, g)
	}
	a.mu.Unlock()
	for _, g := range gs {
		a.closeHandles(g)
	}
}

// Ping reports whether the agent is serving. It takes the registry lock, so
// an agent wedged on that lock does not answer at all; a watchdog that
// pings systemd only after Ping returns nil then lets systemd restart it.
func (a *Agent) Ping() error {
	a.mu.Lock()
	stopping := a.stopping
	a.mu.Unlock()
	switch {
	case !a.ran.Load():
		return errors.New("agent: not running")
	case stopping:
		return errors.New("agent: stopping")
	}
	return nil
}
