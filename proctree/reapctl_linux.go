package proctree

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AcquireReaper makes the calling process a child subreaper
// (PR_SET_CHILD_SUBREAPER, procctl's PROC_REAP_ACQUIRE): every descendant
// orphaned from now on is reparented to it instead of to PID 1 of the pid
// namespace, so that it can be waited for and nothing escapes by double
// forking. It fails with [ErrAlreadyReaper] (procctl's EALREADY) when the
// process already is one. The setting is not inherited by children.
func AcquireReaper() error {
	on, err := isSubreaper()
	if err != nil {
		return err
	}
	if on {
		return fmt.Errorf("proctree: acquire reaper: %w", ErrAlreadyReaper)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("proctree: acquire reaper: %w (Linux >= 3.4 is needed)", os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err))
	}
	return nil
}

// ReleaseReaper clears the child subreaper attribute (PROC_REAP_RELEASE):
// processes orphaned afterwards go to the next subreaper up or to PID 1.
// Those already reparented stay children of the caller. It fails with
// [ErrNotReaper] (procctl's ENOTCONN) when the process is not a subreaper.
func ReleaseReaper() error {
	on, err := isSubreaper()
	if err != nil {
		return err
	}
	if !on {
		return fmt.Errorf("proctree: release reaper: %w", ErrNotReaper)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("proctree: release reaper: %w", os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err))
	}
	return nil
}

func isSubreaper() (bool, error) {
	var v int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0); err != nil {
		return false, fmt.Errorf("proctree: %w", os.NewSyscallError("prctl(PR_GET_CHILD_SUBREAPER)", err))
	}
	return v != 0, nil
}

// ReaperStatus reports the calling process's reaper state (procctl's
// PROC_REAP_STATUS). The counts are a snapshot of /proc (see [Descendants]).
func ReaperStatus() (ReaperState, error) {
	on, err := isSubreaper()
	if err != nil {
		return ReaperState{}, err
	}
	s := ReaperState{Acquired: on, Init: os.Getpid() == 1, FirstPid: -1}
	self := os.Getpid()
	pids, err := Descendants(self)
	if err != nil {
		return ReaperState{}, err
	}
	s.Descendants = len(pids)
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			continue // gone since the walk
		}
		if st.PPid == self {
			s.Children++
		}
		if st.IsZombie() {
			s.Zombies++
		} else if s.FirstPid == -1 {
			s.FirstPid = pid
		}
	}
	return s, nil
}
