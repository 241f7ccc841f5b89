package pid1

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/pid1/internal/testknobs"
)

// While CMD runs, one goroutine both waits for children and reaps them.
//
// Through os/signal, every child's exit wakes three threads in turn: the one
// the kernel delivers SIGCHLD to (Go's signal handler), os/signal's relay
// goroutine, and Run's goroutine, which then reaps. Instead, SIGCHLD's
// disposition is SIG_DFL while CMD runs: the kernel then sends no signal at
// all (SIGCHLD's default action is to ignore it), yet it still wakes a
// thread blocked in waitid(2) when a child exits. SIG_DFL, not SIG_IGN:
// SIG_IGN makes the kernel reap children itself, and CMD's exit status would
// be lost.
//
// The waiter blocks in waitid(P_ALL, WEXITED|WNOWAIT), which reports an exit
// without reaping, then reaps every child that has exited with
// wait4(-1, WNOHANG) while holding supervisor.mu. Forwarding a signal takes
// the same lock and checks that CMD has not been reaped, so CMD's pid is never
// signalled after it could have been reused. The waiter returns once it has
// reaped CMD; Run then puts Go's SIGCHLD handler back before it ends what CMD
// left behind (finish), which waits for SIGCHLD through os/signal again.

// childWaiter is the goroutine that reaps while CMD runs.
type childWaiter struct {
	done chan struct{} // closed when the goroutine has returned
	err  error         // why it returned before reaping CMD; read after done
}

// takeSIGCHLD sets SIGCHLD to SIG_DFL for the waiter, before CMD starts, and
// returns the function that puts Go's handler back. It returns nil when the
// disposition cannot be changed (or a test forces the fallback): Run then
// reaps on SIGCHLD through os/signal.
func (s *supervisor) takeSIGCHLD() (restore func() error) {
	if testknobs.ReapOnSIGCHLD {
		s.log.Debug("orphand init: reaping on SIGCHLD through os/signal", "reason", "forced by a test")
		return nil
	}
	restore, err := defaultSIGCHLD()
	if err != nil {
		s.log.Debug("orphand init: reaping on SIGCHLD through os/signal", "reason", err)
		return nil
	}
	return restore
}

// putBackSIGCHLD gives SIGCHLD its Go handler back, once.
func (s *supervisor) putBackSIGCHLD() {
	if s.restoreCHLD == nil {
		return
	}
	if err := s.restoreCHLD(); err != nil {
		s.log.Error("orphand init: cannot restore SIGCHLD's handler; zombies may be left until init exits", "err", err)
	}
	s.restoreCHLD = nil
}

// startWaiter starts the waiter, unless SIGCHLD could not be taken: Run
// then reaps on SIGCHLD through os/signal.
func (s *supervisor) startWaiter() *childWaiter {
	if s.restoreCHLD == nil {
		return nil
	}
	w := &childWaiter{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		// One thread sleeps in waitid and reaps when it wakes; measured,
		// that costs a little less CPU per reap than letting the goroutine
		// move between threads.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		w.err = s.waitChildren()
	}()
	return w
}

// waitChildren reaps every child as it exits, until CMD is among them.
func (s *supervisor) waitChildren() error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("waitid", err)
		}
		if s.reapLocked() {
			return nil
		}
	}
}

// stop waits for the waiter to return and puts SIGCHLD's handler back; the
// caller then reaps what exited meanwhile (no SIGCHLD announced it).
func (w *childWaiter) stop(s *supervisor) {
	<-w.done
	if w.err != nil {
		s.log.Warn("orphand init: the reaper stopped; reaping on SIGCHLD instead", "err", w.err)
		s.reg.wait() // SIGCHLD must reach s.sigc before it is needed
	}
	s.putBackSIGCHLD()
}

// doneChan is nil (never ready) for a nil waiter.
func (w *childWaiter) doneChan() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.done
}

// kernelSigaction holds the kernel's struct sigaction (handler, flags,
// restorer, mask: 32 bytes on 64-bit architectures); its zero value is
// SIG_DFL with no flags on every architecture.
type kernelSigaction [8]uint64

// defaultSIGCHLD sets SIGCHLD's disposition to SIG_DFL and returns the
// function that puts the previous one (Go's handler) back, byte for byte.
// Raw rt_sigaction, because os/signal cannot do this: signal.Reset keeps Go's
// handler installed.
func defaultSIGCHLD() (restore func() error, err error) {
	var dfl, old kernelSigaction
	if err := rtSigaction(syscall.SIGCHLD, &dfl, &old); err != nil {
		return nil, err
	}
	return func() error { return rtSigaction(syscall.SIGCHLD, &old, nil) }, nil
}

// rtSigaction is rt_sigaction(2); a nil act only reads the disposition.
func rtSigaction(sig syscall.Signal, act, old *kernelSigaction) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), kernelSigsetSize, 0, 0)
	if errno != 0 {
		return os.NewSyscallError("rt_sigaction", errno)
	}
	return nil
}
