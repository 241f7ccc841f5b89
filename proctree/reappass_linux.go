package proctree

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reapMu serialises every reaping pass in the process (the Reaper's and
// KillDescendants') with ClaimChild's start functions, and guards
// passScratch. Lock order: reapMu, then syscall.ForkLock.
var reapMu sync.Mutex

// passScratch is reused by every pass, so that draining thousands of
// zombies does not grow the heap.
var passScratch struct {
	cands []int
	owned map[int]bool
}

// claims holds the children that callers of ClaimChild will wait for
// themselves (pid -> number of claims).
var claims = struct {
	sync.Mutex
	m map[int]int
}{m: map[int]int{}}

// selector chooses the children a pass may reap.
type selector struct {
	pid  int            // ReaperConfig.Pid: -1/0 any, > 0 one, < -1 a process group
	only map[int]uint64 // when not nil, only these pids, with these start times (0: any)
}

// passResult is what one reaping pass did.
type passResult struct {
	reaped   int // processes reaped
	deferred int // zombie children left to the owner that will wait for them
}

// reapPass reaps the zombie children that sel selects and nobody else will
// wait for, and calls emit, which must not block, with each status (and with
// failures, as a status with Err set). See the package documentation for
// why it is safe next to os/exec.
func reapPass(opts int, sel selector, emit func(ReapStatus)) passResult {
	reapMu.Lock()
	defer reapMu.Unlock()
	// No child can be forked by os/exec or syscall.ForkExec while this is
	// held (they take ForkLock for writing around clone), so the set of
	// children that carry a pidfd cannot grow during the pass.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()

	if sel.only == nil && !anyWaitable(sel, opts) {
		return passResult{}
	}
	owned, err := ownedPidsLocked()
	if err != nil {
		emit(ReapStatus{Err: err})
		return passResult{}
	}
	// wait4(-1) only when nobody owns anything: even a pidfd for a process
	// that is not our child protects it, since a subreaper may inherit it
	// at any moment.
	if sel.only == nil && len(owned) == 0 {
		return passResult{reaped: reapAny(sel, opts, emit)}
	}
	return reapUnowned(sel, opts, owned, emit)
}

// ownedPidsLocked returns the pids that someone in this process may wait
// for: those of foreign pidfds (os/exec's) and of claims. The map is
// passScratch's, valid until the next pass.
func ownedPidsLocked() (map[int]bool, error) {
	fds, err := scanForeignPidfds()
	if err != nil {
		return nil, err
	}
	if passScratch.owned == nil {
		passScratch.owned = map[int]bool{}
	}
	owned := passScratch.owned
	clear(owned)
	for _, f := range fds {
		owned[f.pid] = true
	}
	claims.Lock()
	for pid := range claims.m {
		owned[pid] = true
	}
	claims.Unlock()
	return owned, nil
}

// reapAny is the fast path, taken when nothing is owned by anyone: like
// tini, wait4 for any selected child until none is left.
func reapAny(sel selector, opts int, emit func(ReapStatus)) int {
	arg := sel.pid
	if arg == 0 {
		arg = -1
	}
	n := 0
	for {
		var ws syscall.WaitStatus
		pid, err := wait4(arg, &ws, opts)
		if err != nil {
			if !errors.Is(err, syscall.ECHILD) {
				emit(ReapStatus{Err: err})
			}
			return n
		}
		if pid <= 0 {
			return n
		}
		n++
		emit(ReapStatus{Pid: pid, WaitStatus: ws})
	}
}

// reapUnowned is the slow path: reap, one pid at a time, the selected zombie
// children that nobody owns; count the owned ones left.
func reapUnowned(sel selector, opts int, owned map[int]bool, emit func(ReapStatus)) passResult {
	cands := passScratch.cands[:0]
	switch {
	case sel.only != nil:
		for pid, start := range sel.only {
			// A pid of ours cannot have been reused while it is our zombie,
			// but by now it may name a new process: check it is the same.
			if st, err := readStat(pid); err == nil && (start == 0 || st.StartTime == start) {
				cands = append(cands, pid)
			}
		}
	case sel.pid > 0:
		cands = append(cands, sel.pid)
	default:
		if err := readChildren(os.Getpid(), func(pid int) { cands = append(cands, pid) }); err != nil {
			emit(ReapStatus{Err: err})
			return passResult{}
		}
	}
	passScratch.cands = cands[:0]
	var res passResult
	for _, pid := range cands {
		if sel.pid < -1 {
			if st, err := readStat(pid); err != nil || st.Pgrp != -sel.pid {
				continue
			}
		}
		if owned[pid] {
			if waitable(pid, opts) {
				res.deferred++
			}
			continue
		}
		var ws syscall.WaitStatus
		got, err := wait4(pid, &ws, opts)
		switch {
		case errors.Is(err, syscall.ECHILD):
			// not (or no longer) our child: reaped already, or a
			// grandchild in KillDescendants' set
		case err != nil:
			emit(ReapStatus{Err: err})
		case got == pid:
			res.reaped++
			emit(ReapStatus{Pid: pid, WaitStatus: ws})
		}
	}
	return res
}

func wait4(pid int, ws *syscall.WaitStatus, opts int) (int, error) {
	for {
		got, err := syscall.Wait4(pid, ws, syscall.WNOHANG|opts, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("wait4", err)
		}
		return got, nil
	}
}

// anyWaitable reports whether a selected child has exited and waits to be
// reaped, without reaping it.
func anyWaitable(sel selector, opts int) bool {
	idtype, id := unix.P_ALL, 0
	switch {
	case sel.pid > 0:
		idtype, id = unix.P_PID, sel.pid
	case sel.pid < -1:
		idtype, id = unix.P_PGID, -sel.pid
	}
	return peekWaitable(idtype, id, opts) != 0
}

// waitable reports whether the child pid has exited and waits to be reaped.
func waitable(pid, opts int) bool { return peekWaitable(unix.P_PID, pid, opts) == pid }

// peekWaitable returns the pid of an exited child waitid(2) selects, 0 when
// none, without reaping it (WNOWAIT).
func peekWaitable(idtype, id, opts int) int {
	var info unix.Siginfo
	for {
		err := unix.Waitid(idtype, id, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT|opts, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0
		}
		return siginfoPid(&info)
	}
}

// siginfoPid returns si_pid, which x/sys/unix's opaque Siginfo hides: it
// follows si_signo, si_errno and si_code, aligned to a pointer (offset 16
// on 64-bit systems, 12 on 32-bit ones). waitid zeroes it when no child
// was waitable.
func siginfoPid(info *unix.Siginfo) int {
	const ptr = unsafe.Sizeof(uintptr(0))
	const off = (12 + ptr - 1) &^ (ptr - 1)
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), off)))
}
