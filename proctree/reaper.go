package proctree

import (
	"errors"
	"log/slog"
	"syscall"
)

// ReaperConfig configures [StartReaper]. The fields keep the names and, where
// it still makes sense, the meaning of go-reaper's Config; the zero value
// reaps every orphaned child and requires PID 1 or a subreaper.
type ReaperConfig struct {
	// Pid selects the children to reap, as wait4(2)'s pid argument did in
	// go-reaper: -1 or 0 any child (0 does not mean "my process group"
	// here, so that the zero value is useful), > 0 that child only, < -1
	// any child in process group -Pid. Whatever it selects, a child that
	// someone else will wait for is never reaped (see the package
	// documentation).
	Pid int
	// Options are extra wait4(2) options. Only those that choose which
	// children are waited for are accepted: unix.WALL (__WALL) and
	// unix.WCLONE (__WCLONE); WNOHANG is implied and may be given. Others
	// (WUNTRACED, WCONTINUED) would report stops instead of reaping and are
	// refused.
	Options int
	// DisablePid1Check lets the reaper run in a process that is neither
	// PID 1 nor a child subreaper. Without it StartReaper fails with
	// [ErrNotPid1] there, since such a process inherits no orphans.
	// (go-reaper required this flag for subreapers too; proctree accepts a
	// subreaper without it.)
	DisablePid1Check bool
	// EnableChildSubreaper makes the process a child subreaper
	// ([AcquireReaper]) before the reaper starts, so that orphaned
	// descendants land on it. It stays one after the reaper stops.
	EnableChildSubreaper bool
	// StatusChannel, if not nil, receives the status of every process the
	// reaper reaps. The reaper never blocks on it: statuses wait in an
	// internal queue of StatusBacklog entries while the channel is full;
	// beyond that each status is dropped, counted ([Reaper.Dropped]) and
	// logged at Warn level with its pid. Statuses still queued when the
	// reaper stops are dropped the same way. The reaper never closes it.
	// When the reader closes it (go-reaper's users do, to stop listening),
	// the reaper says so once at Warn level and goes on reaping, sending
	// nothing more: a send on a closed channel panics, and a PID 1 that
	// panics takes its container down with it.
	StatusChannel chan ReapStatus
	// StatusBacklog bounds the queue in front of StatusChannel; 0 means
	// 4096.
	StatusBacklog int
	// Logger receives the reaper's logs (each reap at Debug, drops at Warn,
	// failures at Error); nil means slog.Default().
	Logger *slog.Logger
}

// ReapStatus is the status of one reaped process, sent on
// [ReaperConfig.StatusChannel].
type ReapStatus struct {
	Pid        int
	WaitStatus syscall.WaitStatus
	// Err is set, and Pid and WaitStatus are not, when waiting failed in
	// a way that is not normal operation.
	Err error
}

var (
	// ErrNotPid1 is returned by [StartReaper] in a process that is neither
	// PID 1 nor a child subreaper, unless DisablePid1Check is set.
	ErrNotPid1 = errors.New("not PID 1 nor a child subreaper: orphans do not land here (set EnableChildSubreaper, or DisablePid1Check to reap own children only)")
	// ErrReaperRunning is returned by [StartReaper] while another Reaper of
	// this process runs: wait must have exactly one owner.
	ErrReaperRunning = errors.New("a reaper is already running in this process")
	// ErrNoPidfd is returned by [StartReaper] when os/exec cannot hold a
	// pidfd for the children it starts (Linux < 5.4, or a seccomp filter),
	// so orphans cannot be told apart from children os/exec waits for.
	ErrNoPidfd = errors.New("os/exec cannot use pidfds here (Linux >= 5.4 without a seccomp filter on pidfd_open/clone3 is needed); run the reaper as a separate PID 1 process instead")
)
