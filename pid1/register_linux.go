package pid1

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// How init asks os/signal for the ~55 signals it catches, and what CMD
// inherits.
//
// Cost. os/signal enables most signals with a round trip to a runtime
// thread (it updates that thread's signal mask): two thread wake-ups per
// signal, 5-80 µs each on a shared 2-core VM, so 0.4 ms and more for all of
// them, as much as a Go program that only starts CMD spends on everything
// else. It is the largest part of init's start-up, and it cannot be moved
// after CMD has started: a signal sent to init after CMD has started must
// be forwarded, and one that arrives before init has asked for it is
// dropped by the Go runtime (or ends init). Asking while CMD starts was
// measured (1.2x the Go floor instead of 1.5x) and rejected for that: under
// load, a SIGINT sent once CMD had said it was ready was lost. So init asks
// on a goroutine of its own while it prepares the rest (the executable's
// path, the subreaper, the descriptors, a cgroup), and starts CMD when both
// are done.
//
// Inherited dispositions. A signal that was ignored (SIG_IGN) when init
// started must stay ignored in CMD, as tini and dumb-init leave it
// (`nohup orphand init -- CMD`). CMD inherits SIG_IGN only for a signal init
// itself still ignores when it forks, and os/signal un-ignores what it is
// asked for. So such a signal is asked for only once CMD has started: from
// then on init forwards it (to a CMD that ignores it, unless CMD installed
// its own handler), as tini and dumb-init do; until then init ignores it,
// as it was told to. The Go runtime lets a program see an inherited SIG_IGN
// only for SIGHUP and SIGINT (it keeps theirs, and signal.Ignored reports
// it) and for SIGCONT, SIGTSTP, SIGTTIN and SIGTTOU (which it leaves
// alone): it installs its own handler over every other one before any code
// of init runs, and that information is gone.
//
// Inherited mask. The child of a fork starts with the signal mask of the
// forking thread, and a Go thread's mask is the one the process started
// with, minus the signals the runtime unblocks on every thread (SIGHUP,
// SIGINT, SIGQUIT, SIGABRT, SIGTERM, SIGCHLD, SIGPROF, the synchronous
// ones, SIGURG, 32-34). So CMD starts with every other signal blocked that
// init's parent blocked, with nothing to do here; those few cannot be
// passed on.

// permanent keeps every signal init catches registered with os/signal for
// the life of the process. Disabling a signal costs the same round trip as
// enabling it; with this channel registered (and never read: os/signal
// drops what does not fit), Run's own Stop only removes a channel, and the
// next Run (tests) only adds one. After Run returns the signals therefore
// stay caught, and are dropped, instead of getting their default action
// back.
var permanent = make(chan os.Signal, 1)

// inheritedIgnored returns the signals init catches that were ignored when
// the process started, as far as the Go runtime lets a program see (see
// above). It must run before init registers any signal.
func inheritedIgnored() map[syscall.Signal]bool {
	ign := map[syscall.Signal]bool{}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			ign[sig] = true
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU} {
		var old kernelSigaction
		if rtSigaction(sig, nil, &old) == nil && old[0] == sigIgn {
			ign[sig] = true
		}
	}
	return ign
}

// sigIgn is SIG_IGN as the kernel's struct sigaction holds it.
const sigIgn = 1

// registration asks os/signal for init's signals on goroutines of its own:
// before CMD starts, all but the inherited ignored ones; once CMD has
// started, those.
type registration struct {
	c       chan os.Signal
	later   []syscall.Signal // inherited ignored: asked for once CMD has started
	first   chan struct{}    // closed when all but later are asked for
	started bool             // registerLater was called
	abort   atomic.Bool      // stop asking: Run is returning
	done    chan struct{}    // closed when later are asked for (or abort)
	onDone  func()           // called when every signal is asked for
}

// startRegistration starts asking for the signals init catches on c,
// except those ignored when init started; wait for it with waitFirst
// before CMD starts.
func startRegistration(c chan os.Signal, ignored map[syscall.Signal]bool) *registration {
	r := &registration{c: c, first: make(chan struct{}), done: make(chan struct{})}
	var now []syscall.Signal
	for _, s := range caughtSignals() {
		if ignored[s] {
			r.later = append(r.later, s)
		} else {
			now = append(now, s)
		}
	}
	go func() {
		defer close(r.first)
		notify(c, now)
	}()
	return r
}

// waitFirst waits until every signal but the inherited ignored ones is
// asked for.
func (r *registration) waitFirst() { <-r.first }

// registerLater asks for the inherited ignored signals on a goroutine:
// call it once CMD has started.
func (r *registration) registerLater() {
	r.started = true
	go func() {
		defer close(r.done)
		r.waitFirst()
		for _, s := range r.later {
			if r.abort.Load() {
				return
			}
			notify(r.c, []syscall.Signal{s})
		}
		if r.onDone != nil {
			r.onDone()
		}
	}()
}

// wait blocks until every signal is asked for.
func (r *registration) wait() {
	if r.started {
		<-r.done
	} else {
		<-r.first
	}
}

// stop ends the registration (at most one more signal is asked for) and
// unregisters c.
func (r *registration) stop() {
	r.abort.Store(true)
	r.wait()
	signal.Stop(r.c)
}

// notify asks for sigs on c, and on permanent.
func notify(c chan os.Signal, sigs []syscall.Signal) {
	if len(sigs) == 0 {
		return
	}
	list := make([]os.Signal, len(sigs))
	for i, s := range sigs {
		list[i] = s
	}
	signal.Notify(c, list...)
	signal.Notify(permanent, list...) // already enabled: no round trip
}
