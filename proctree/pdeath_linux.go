package proctree

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The parent-death signal on Linux (prctl PR_SET_PDEATHSIG) is an attribute
// of a thread, not of a process:
//
//   - When the parent thread exits, the kernel walks the child's threads and
//     sends each non-zero setting to the whole child process. So one thread
//     that lives as long as the process is enough for it to fire.
//   - A new thread starts with 0, and prctl(PR_GET_PDEATHSIG) reads only the
//     calling thread. Go moves goroutines between threads, so a plain prctl
//     sets or reads an arbitrary thread.
//   - The thread group leader (the main thread) never exits in a Go program
//     (the runtime parks it rather than let it go), and it is the thread that
//     carries a value inherited over execve (os/exec's SysProcAttr.Pdeathsig
//     is set in the child before exec). Its value is therefore the process's
//     value. Package init runs on the main thread (the runtime locks the main
//     goroutine to it during init), so that is where it is first read.
//   - The kernel clears the value on fork (children start with 0), on the
//     exec of a set-user-ID or set-group-ID program or one with file
//     capabilities, and whenever a thread's credentials change (euid, egid,
//     fsuid, fsgid, or permitted capabilities gained). Go applies setuid and
//     friends to every thread, so such a change clears every thread.

var (
	// startPpid is the parent this process had when the package was
	// initialised: the parent whose death the signal is about.
	startPpid = os.Getppid()

	pdeathMu sync.Mutex // guards the variables below
	// leaderPdeath is the main thread's parent-death signal: read on the
	// main thread during init, then what AllThreadsSyscall set.
	leaderPdeath syscall.Signal
	// pinnedPdeath is the signal armed on pdeathThread, the thread kept for
	// that purpose where AllThreadsSyscall is not available (cgo); 0 and nil
	// otherwise.
	pinnedPdeath syscall.Signal
	pdeathThread *pinnedThread
	// pdeathCreds is the credential snapshot taken when the values above
	// were recorded; a change means the kernel has cleared them since.
	pdeathCreds credSnapshot
)

func init() {
	// Package init runs on the main thread: see the comment above.
	var sig int32
	if unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0) == nil {
		leaderPdeath = syscall.Signal(sig)
	}
	// The snapshot only matters while a signal is armed (SetParentDeathSignal
	// takes its own): reading /proc/self/status costs every program that
	// imports proctree ~0.1 ms of start-up.
	if leaderPdeath != 0 {
		pdeathCreds = readCreds()
	}
}

// ParentAtStart returns the parent pid this process had when proctree was
// initialised (before main ran). [SetParentDeathSignal] compares it with the
// current parent to detect a parent that died before the signal was armed.
func ParentAtStart() int { return startPpid }

// SetParentDeathSignal arranges for sig to be sent to this process when its
// parent dies (procctl's PROC_PDEATHSIG_CTL); 0 disarms it.
//
// Linux pitfalls, and what this function does about each:
//
//   - The setting is per thread. It is applied to every thread of the
//     process at once with [syscall.AllThreadsSyscall]. Threads created later
//     start with 0, which does not matter: one armed thread is enough for the
//     signal to fire, and the main thread never exits.
//   - AllThreadsSyscall is refused in programs built with cgo (the race
//     detector links cgo too). Then a thread is created and kept for the life
//     of the process (an idle goroutine locked to it) with the setting, which
//     makes the signal fire just the same. The main thread cannot be reached
//     that way, so a different signal it inherited over execve can be
//     neither changed nor disarmed: that fails with [ErrUnsupported].
//   - It fires when the parent *thread* exits, even if the parent process
//     lives on (the child is then reparented to another of its threads).
//     Only the parent can avoid that: it must spawn from a thread that lives
//     as long as it does (in Go, not from a goroutine that locked its thread
//     and then returns).
//   - It is cleared on fork (in the child), on exec of a set-user-ID or
//     set-group-ID program, and when the process changes its credentials: arm
//     it again after setuid, and in each child that needs it.
//   - If the parent died before the call, nothing will ever fire. After
//     arming, the current parent is compared with [ParentAtStart]; when it
//     differs the process was already reparented, so sig is sent to the
//     process here and now (a SIGKILL then ends the process before this
//     returns). A parent that died before proctree's init cannot be
//     detected this way: pass the parent's pid to the child and compare it
//     with os.Getppid() yourself.
func SetParentDeathSignal(sig syscall.Signal) error {
	if sig < 0 || sig > 64 {
		return fmt.Errorf("proctree: parent-death signal %d: %w", int(sig), syscall.EINVAL)
	}
	pdeathMu.Lock()
	defer pdeathMu.Unlock()
	refreshPdeathLocked()
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(sig), 0)
	switch {
	case errno == 0:
		leaderPdeath = sig
		stopPinnedLocked() // its thread got sig too; the main thread suffices
	case errors.Is(errno, syscall.ENOTSUP):
		if err := setPdeathPinnedLocked(sig); err != nil {
			return err
		}
	default:
		return fmt.Errorf("proctree: set parent-death signal: %w", os.NewSyscallError("prctl(PR_SET_PDEATHSIG)", errno))
	}
	pdeathCreds = readCreds()
	if sig != 0 && os.Getppid() != startPpid {
		// The parent was gone before the signal was armed: deliver it as the
		// kernel would have.
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			return fmt.Errorf("proctree: parent %d already gone, raising %v: %w", startPpid, sig, err)
		}
	}
	return nil
}

// setPdeathPinnedLocked arms sig on a thread kept for that purpose (the cgo
// fallback).
func setPdeathPinnedLocked(sig syscall.Signal) error {
	if leaderPdeath != 0 && leaderPdeath != sig {
		return fmt.Errorf("proctree: set parent-death signal %v: the main thread has %v (inherited over execve), which a program built with cgo cannot change: %w", sig, leaderPdeath, ErrUnsupported)
	}
	if sig == 0 || sig == leaderPdeath {
		stopPinnedLocked() // the main thread's value is the process's
		return nil
	}
	if pdeathThread == nil {
		pdeathThread = newPinnedThread()
	}
	err := pdeathThread.do(func() error {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0); err != nil {
			return fmt.Errorf("proctree: set parent-death signal: %w", os.NewSyscallError("prctl(PR_SET_PDEATHSIG)", err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	pinnedPdeath = sig
	return nil
}

func stopPinnedLocked() {
	if pdeathThread != nil {
		pdeathThread.stop() // the thread exits, and its setting with it
		pdeathThread = nil
	}
	pinnedPdeath = 0
}

// refreshPdeathLocked forgets the recorded signals when a credential change
// has made the kernel clear them.
func refreshPdeathLocked() {
	if (leaderPdeath != 0 || pinnedPdeath != 0) && readCreds().clears(pdeathCreds) {
		leaderPdeath = 0
		stopPinnedLocked()
	}
}

// ParentDeathSignal returns the signal this process will receive when its
// parent dies, 0 when none (procctl's PROC_PDEATHSIG_STATUS).
//
// It reports the main thread's setting, which is the process's (see
// [SetParentDeathSignal]): as inherited over execve and read during package
// init, or as last set by SetParentDeathSignal, and 0 once a credential
// change has made the kernel clear it. A prctl made directly by other code
// on some thread is not seen. In a Go library built as c-archive or
// c-shared, package init does not run on the main thread, so the value read
// then is the initialising thread's.
func ParentDeathSignal() (syscall.Signal, error) {
	pdeathMu.Lock()
	defer pdeathMu.Unlock()
	refreshPdeathLocked()
	if pinnedPdeath != 0 {
		return pinnedPdeath, nil
	}
	return leaderPdeath, nil
}

// pinnedThread is a goroutine locked to its own OS thread for the life of
// the process, running functions on that thread.
type pinnedThread struct {
	req  chan func()
	done chan struct{}
}

func newPinnedThread() *pinnedThread {
	t := &pinnedThread{req: make(chan func()), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		// Never unlocked: when this goroutine returns, the runtime ends the
		// thread, and its setting with it.
		runtime.LockOSThread()
		for f := range t.req {
			f()
		}
	}()
	return t
}

func (t *pinnedThread) do(f func() error) error {
	errc := make(chan error, 1)
	t.req <- func() { errc <- f() }
	return <-errc
}

func (t *pinnedThread) stop() {
	close(t.req)
	<-t.done
}

// readCreds snapshots this process's credentials; a failed read yields a
// snapshot that never reports a change.
func readCreds() credSnapshot {
	st, err := ReadStatus(0)
	if err != nil {
		return credSnapshot{}
	}
	c, err := credsOf(st)
	if err != nil {
		return credSnapshot{}
	}
	return c
}
