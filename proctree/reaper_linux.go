package proctree

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper reaps orphaned children in the background. Start one with
// [StartReaper] or [Reap]; at most one runs in a process.
type Reaper struct {
	cfg   ReaperConfig
	log   *slog.Logger
	debug bool // log each reap (checked once: formatting each costs memory)
	opts  int
	sel   selector

	sigc   chan os.Signal // SIGCHLD, coalesced by os/signal
	kick   chan reapRequest
	poke   chan struct{} // a claim was released: look again (buffered, 1)
	queue  statusQueue
	closed bool // StatusChannel was closed by its reader; run's goroutine only
	drops  atomic.Uint64
	reaped atomic.Uint64
	done   chan struct{} // closed when run has returned
}

// reapRequest asks the reaper for a pass that also reaps the pids in extra
// (KillDescendants' victims); done is closed after the pass.
type reapRequest struct {
	extra map[int]uint64
	done  chan struct{}
}

// activeReaper is the Reaper that owns wait in this process, if any.
var activeReaper atomic.Pointer[Reaper]

// Deferred zombies (owned by someone who should wait for them) are looked
// at again on every SIGCHLD and, while any exist, after a backoff: that
// catches an owner that closed its pidfd without waiting.
const (
	deferredRecheckMin = time.Second
	deferredRecheckMax = 30 * time.Second
	defaultBacklog     = 4096
)

// pidfdProbe reports whether os/exec holds pidfds for its children here;
// tests replace it to force the fallback.
var pidfdProbe = func() error {
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		return err
	}
	defer func() { _ = p.Release() }()
	// FindProcess returns a pidfd-backed Process exactly when os has found
	// that pidfd_open, waitid(P_PIDFD) and clone(CLONE_PIDFD) all work,
	// which is also when os.StartProcess keeps a pidfd for each child.
	return p.WithHandle(func(uintptr) {})
}

// Reap starts a reaper for the rest of the process's life with go-reaper's
// defaults (any child, PID 1 check on), logging to slog.Default(), and
// returns at once: the reaping happens on a goroutine of its own. It fails
// with [ErrNotPid1] in a process that is neither PID 1 nor a subreaper, and
// with [ErrReaperRunning] when a reaper already runs.
//
// go-reaper's idiom `go reaper.Reap()` discards whatever Reap returns, so
// Reap also logs its failure at Error level on slog.Default() (stderr unless
// the program set another default): a process that does not reap is never
// silent about it.
//
// Deprecated: use [StartReaper]. It returns its error synchronously,
// before anything runs in the background, together with the *Reaper that
// stops the reaping and waits for it, so there is no reason to start it
// with `go` and lose the error.
func Reap() error {
	_, err := StartReaper(context.Background(), ReaperConfig{Pid: -1})
	if err != nil {
		slog.Default().Error("proctree: Reap: not reaping orphaned children", "err", err,
			"fix", "run the program as PID 1 of its container, or call proctree.StartReaper with EnableChildSubreaper (DisablePid1Check reaps own children only)")
	}
	return err
}

// StartReaper starts reaping the orphaned children of this process until
// ctx is done. It checks, in order: the options, the PID 1 rule, that
// os/exec keeps pidfds ([ErrNoPidfd]), that /proc belongs to this pid
// namespace, and that no other Reaper runs ([ErrReaperRunning]).
//
// The reaper is driven by SIGCHLD (through os/signal) and sleeps while
// nothing exits. It never reaps a child that os/exec (or anyone holding a
// pidfd for it, or a [ClaimChild] caller) will wait for: see the package
// documentation.
func StartReaper(ctx context.Context, cfg ReaperConfig) (*Reaper, error) {
	opts := cfg.Options &^ syscall.WNOHANG
	if opts&^(unix.WALL|unix.WCLONE) != 0 {
		return nil, fmt.Errorf("proctree: start reaper: options %#x: only WALL and WCLONE may be given: %w", cfg.Options, syscall.EINVAL)
	}
	if cfg.EnableChildSubreaper {
		if err := AcquireReaper(); err != nil && !errors.Is(err, ErrAlreadyReaper) {
			return nil, err
		}
	}
	if !cfg.DisablePid1Check && os.Getpid() != 1 {
		sub, err := isSubreaper()
		if err != nil {
			return nil, err
		}
		if !sub {
			return nil, fmt.Errorf("proctree: start reaper in pid %d: %w", os.Getpid(), ErrNotPid1)
		}
	}
	if err := pidfdProbe(); err != nil {
		return nil, fmt.Errorf("proctree: start reaper: %w (%w)", ErrNoPidfd, err)
	}
	if st, err := readStat(os.Getpid()); err != nil {
		return nil, fmt.Errorf("proctree: start reaper: read /proc/self/stat: %w", err)
	} else if st.Pid != os.Getpid() {
		return nil, fmt.Errorf("proctree: start reaper: /proc shows pid %d for this process, which is pid %d: /proc belongs to another pid namespace (mount one for this namespace, e.g. unshare --mount-proc)", st.Pid, os.Getpid())
	}
	backlog := cfg.StatusBacklog
	if backlog <= 0 {
		backlog = defaultBacklog
	}
	r := &Reaper{
		cfg:   cfg,
		log:   cfg.Logger,
		opts:  opts,
		sel:   selector{pid: cfg.Pid},
		sigc:  make(chan os.Signal, 1),
		kick:  make(chan reapRequest),
		poke:  make(chan struct{}, 1),
		queue: statusQueue{max: backlog},
		done:  make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.debug = r.log.Enabled(ctx, slog.LevelDebug)
	if !activeReaper.CompareAndSwap(nil, r) {
		return nil, fmt.Errorf("proctree: start reaper: %w", ErrReaperRunning)
	}
	// Notify before the first pass, so that no exit between the two is
	// missed.
	signal.Notify(r.sigc, syscall.SIGCHLD)
	go r.run(ctx)
	return r, nil
}

// Wait blocks until the reaper's goroutine has returned (after its context
// is done).
func (r *Reaper) Wait() { <-r.done }

// Done returns a channel closed when the reaper has stopped.
func (r *Reaper) Done() <-chan struct{} { return r.done }

// Dropped returns how many statuses were dropped because StatusChannel was
// full and the backlog too (each was logged).
func (r *Reaper) Dropped() uint64 { return r.drops.Load() }

// Reaped returns how many processes the reaper has reaped.
func (r *Reaper) Reaped() uint64 { return r.reaped.Load() }

func (r *Reaper) run(ctx context.Context) {
	defer close(r.done)
	defer activeReaper.CompareAndSwap(r, nil)
	defer signal.Stop(r.sigc)

	var (
		timer   *time.Timer
		timerC  <-chan time.Time
		backoff = deferredRecheckMin
	)
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	defer stopTimer()

	deferred := r.drain(nil)
	for {
		// Arm the recheck only while owned zombies wait; idle means no timer.
		switch {
		case deferred == 0:
			stopTimer()
			backoff = deferredRecheckMin
		case timer == nil:
			timer = time.NewTimer(backoff)
			timerC = timer.C
			backoff = min(2*backoff, deferredRecheckMax)
		}
		w, req := r.next(ctx, timerC)
		switch w {
		case wakeStop:
			r.flushOnStop()
			return
		case wakeTimer:
			timer, timerC = nil, nil
			deferred = r.drain(nil)
		case wakeKick:
			deferred = r.drain(req.extra)
			close(req.done)
		case wakeSent:
			r.queue.pop()
		case wakeClosed:
			r.markClosed()
		default: // wakeExit
			deferred = r.drain(nil)
		}
	}
}

// wake is what ended the reaper's sleep.
type wake int

const (
	wakeExit   wake = iota // SIGCHLD, or a claim released: look for zombies
	wakeStop               // ctx is done
	wakeTimer              // time to look at deferred zombies again
	wakeKick               // a reapRequest
	wakeSent               // StatusChannel took the head of the queue
	wakeClosed             // StatusChannel was closed by its reader
)

// next sleeps until something needs the reaper, offering the head of the
// status queue to StatusChannel meanwhile.
func (r *Reaper) next(ctx context.Context, timerC <-chan time.Time) (w wake, req reapRequest) {
	var out chan<- ReapStatus
	var head ReapStatus
	if r.queue.len() > 0 && !r.closed {
		out, head = r.cfg.StatusChannel, r.queue.peek()
	}
	defer func() {
		if sendOnClosed(recover()) {
			w = wakeClosed
		}
	}()
	select {
	case <-ctx.Done():
		return wakeStop, req
	case <-r.sigc:
		return wakeExit, req
	case <-r.poke:
		return wakeExit, req
	case <-timerC:
		return wakeTimer, req
	case req = <-r.kick:
		return wakeKick, req
	case out <- head:
		return wakeSent, req
	}
}

// drain runs passes until one reaps nothing (SIGCHLD is coalesced, so one
// signal may stand for many exits, and more may come during a pass). It
// returns the number of owned zombies left.
func (r *Reaper) drain(extra map[int]uint64) int {
	for {
		res := reapPass(r.opts, r.sel, r.deliver)
		if len(extra) > 0 {
			more := reapPass(r.opts, selector{pid: -1, only: extra}, r.deliver)
			res.reaped += more.reaped
			extra = nil
		}
		if res.reaped == 0 { // errors were reported once; they are not retried in a loop
			return res.deferred
		}
	}
}

// deliver logs st and hands it to StatusChannel without ever blocking. It
// runs under reapMu.
func (r *Reaper) deliver(st ReapStatus) {
	if st.Err != nil {
		r.log.Error("proctree: reaper: wait failed", "err", st.Err)
	} else {
		r.reaped.Add(1)
		if r.debug {
			r.log.Debug("proctree: reaped", "pid", st.Pid, "status", describeStatus(st.WaitStatus))
		}
	}
	if r.cfg.StatusChannel == nil || r.closed {
		return
	}
	if r.queue.len() == 0 && r.trySend(st) {
		return
	}
	if r.closed {
		return
	}
	if !r.queue.push(st) {
		r.drop(st, "status channel and backlog full")
	}
}

func (r *Reaper) drop(st ReapStatus, why string) {
	r.drops.Add(1)
	r.log.Warn("proctree: reaper dropped a status", "reason", why, "pid", st.Pid, "status", describeStatus(st.WaitStatus), "err", st.Err, "dropped", r.drops.Load())
}

// flushOnStop hands over what the channel takes now and drops the rest.
func (r *Reaper) flushOnStop() {
	for r.queue.len() > 0 {
		if r.trySend(r.queue.peek()) {
			r.queue.pop()
			continue
		}
		if r.closed {
			return // markClosed emptied the queue
		}
		r.drop(r.queue.pop(), "reaper stopped")
	}
}

// reapNow asks the running reaper for a pass that also reaps extra, and
// waits for it. It returns false when the reaper stopped (or ctx ended)
// before the pass was done.
func (r *Reaper) reapNow(ctx context.Context, extra map[int]uint64) bool {
	req := reapRequest{extra: extra, done: make(chan struct{})}
	select {
	case r.kick <- req:
	case <-r.done:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-req.done:
		return true
	case <-r.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func describeStatus(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal " + ws.Signal().String()
	default:
		return fmt.Sprintf("wait status %#x", uint32(ws))
	}
}
