package pid1

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/orphand/orphand/proctree"
)

// finish ends what CMD left behind, once CMD has been reaped:
//
//  1. the polite phase: Config.KillSignal to every remaining descendant,
//     and up to Config.Grace for them to exit (skipped after an
//     escalation, or with no grace);
//  2. the hard phase: cgroup.kill on CMD's cgroup, and SIGKILL to every
//     descendant still running, until none is;
//  3. reap until init has no child left.
//
// A SIGINT during 1 ends the grace at once; during 2 or 3 it gives up
// waiting (init exits, leaving what could not be killed). Reaping has one
// owner throughout: in 1 and 2 the kill loop (proctree.KillDescendants)
// reaps the processes it killed, and this goroutine reaps nothing until it
// has returned.
func (s *supervisor) finish(ctx context.Context) {
	defer s.dropCgroup()
	noChild := s.reapWaiting()
	if s.cfg.NoKillRemaining || !s.leftovers(noChild) {
		return
	}
	// Waiting starts here: SIGCHLD and SIGINT must reach s.sigc.
	s.reg.wait()
	sig := s.cfg.killSignal()
	grace := s.cfg.grace()
	polite := !s.escalated && grace > 0 && ctx.Err() == nil
	if polite {
		s.log.Debug("orphand init: CMD has exited; signalling the remaining descendants", "signal", SignalName(sig), "grace", grace)
		s.during(ctx, false, func(ctx context.Context) { s.politePhase(ctx, sig, grace) })
	}
	if !s.abandoned {
		// The hard phase ends by itself (SIGKILL cannot be refused); only a
		// SIGINT makes init stop waiting for it.
		s.during(context.WithoutCancel(ctx), true, func(ctx context.Context) { s.hardPhase(ctx, !polite) })
	}
	s.reapAll()
}

// leftovers reports whether anything remains to be killed: a descendant
// (zombies count: their parents may be alive) or a live process in CMD's
// cgroup. With no child left (noChild) a reaper has no descendant either:
// the children of a process that dies are re-parented to it.
func (s *supervisor) leftovers(noChild bool) bool {
	if s.role != roleNone && !noChild {
		if d, err := proctree.Descendants(s.self); err != nil || len(d) > 0 {
			return true
		}
	}
	return s.cg != nil && s.cg.populated()
}

// politePhase sends sig to everything that remains and waits up to grace
// for it to go.
func (s *supervisor) politePhase(ctx context.Context, sig syscall.Signal, grace time.Duration) {
	switch {
	case s.role != roleNone:
		gctx, cancel := context.WithTimeout(ctx, grace)
		defer cancel()
		n, err := proctree.KillDescendants(gctx, sig)
		s.remaining = n
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			s.log.Warn("orphand init: signalling the remaining descendants", "err", err)
		}
	case s.cg != nil:
		// Not a reaper: the tree walk cannot see what was reparented away,
		// but the cgroup holds it all.
		n, err := s.cg.signalAll(sig)
		s.remaining = n
		if err == nil {
			gctx, cancel := context.WithTimeout(ctx, grace)
			err = s.cg.waitEmpty(gctx)
			cancel()
		}
		s.logKill(SignalName(sig), err)
	}
}

// hardPhase SIGKILLs everything that is left. first says whether it is the
// first phase (no polite phase ran), for the count.
func (s *supervisor) hardPhase(ctx context.Context, first bool) {
	n := 0
	if s.cg != nil && s.cg.populated() {
		k, method, err := s.cg.kill(ctx)
		s.logKill(method, err)
		n = k
	}
	if s.role != roleNone {
		k, err := proctree.KillDescendants(ctx, syscall.SIGKILL)
		if err != nil {
			s.log.Warn("orphand init: killing the remaining descendants", "err", err)
		}
		n = max(n, k)
	}
	if first {
		s.remaining = n
	}
}

func (s *supervisor) logKill(what string, err error) {
	switch {
	case err == nil:
		s.log.Debug("orphand init: emptied CMD's cgroup", "cgroup", s.cgroupPath(), "method", what)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
	default:
		s.log.Warn("orphand init: emptying CMD's cgroup", "cgroup", s.cgroupPath(), "method", what, "err", err)
	}
}

// during runs phase on a goroutine of its own and handles signals until it
// returns: a SIGINT cancels the phase's context, which ends the grace
// (polite phase) or gives up waiting (hard phase). Other signals are not
// forwarded any more: CMD is gone.
func (s *supervisor) during(ctx context.Context, hard bool, phase func(context.Context)) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		phase(pctx)
	}()
	for {
		select {
		case <-done:
			return
		case sig := <-s.sigc:
			if s.interrupts(sig.(syscall.Signal)) {
				s.escalated = true
				s.abandoned = s.abandoned || hard
				s.log.Warn("orphand init: SIGINT while stopping: not waiting any longer", "phase", map[bool]string{false: "grace", true: "kill"}[hard])
				cancel()
			}
		}
	}
}

// interrupts reports whether sig, received while stopping, cuts a wait
// short: one that --rewrite turns into a SIGINT (by default, a SIGINT).
func (s *supervisor) interrupts(sig syscall.Signal) bool {
	return !s.cfg.NoEscalate && rewritten(s.cfg.Rewrite, sig) == syscall.SIGINT
}

// reapAll reaps until init has no child left, woken by SIGCHLD. A SIGINT
// (or an earlier abandon) stops the wait.
func (s *supervisor) reapAll() {
	for !s.reapWaiting() {
		if s.abandoned {
			d, _ := proctree.Descendants(s.self)
			s.log.Warn("orphand init: exiting with descendants left", "pids", d)
			return
		}
		sig := (<-s.sigc).(syscall.Signal)
		if s.interrupts(sig) {
			s.abandoned = true
		}
	}
}
