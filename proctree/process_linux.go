package proctree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Process is a process held by a pidfd. Its methods are safe for concurrent
// use. The zero value is not usable; get one from [Open], [OpenIdentity] or
// [FromPidfd].
type Process struct {
	id   Identity
	stat Stat     // /proc/<pid>/stat as read when opened
	own  ownKey   // the pidfd's entry in the registry of proctree's own pidfds
	file *os.File // the pidfd, registered with the netpoller (O_NONBLOCK)

	cleanup runtime.Cleanup // forgets fd in the registry if p is dropped unclosed

	exitOnce sync.Once
	exited   chan struct{} // closed when the pidfd reports the exit
	watchErr error         // set before exited is closed when watching failed
	watcher  sync.WaitGroup

	closeOnce sync.Once
	closing   atomic.Bool
	closeErr  error
}

// Open opens a pidfd for pid and records the process's identity.
//
// Open cannot know whether pid still names the process the caller meant: use
// [OpenIdentity] when the start time is known. Once Open returns, the
// *Process refers to that one process forever, even after its pid is reused.
func Open(pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("proctree: open pid %d: %w", pid, syscall.EINVAL)
	}
	fd, err := pidfdOpen(pid)
	if err != nil {
		return nil, fmt.Errorf("proctree: open pid %d: %w", pid, err)
	}
	p, err := newProcess(fd, pid)
	if err != nil {
		return nil, fmt.Errorf("proctree: open pid %d: %w", pid, err)
	}
	return p, nil
}

// OpenIdentity opens the process id names, failing with an error that wraps
// [ErrIdentityMismatch] when the pid now belongs to another process, and
// [os.ErrProcessDone] when no process has that pid.
func OpenIdentity(id Identity) (*Process, error) {
	p, err := Open(id.Pid)
	if err != nil {
		return nil, err
	}
	if !p.id.Same(id) {
		got := p.id
		p.Close()
		return nil, fmt.Errorf("proctree: pid %d is now %v, not %v: %w", id.Pid, got, id, ErrIdentityMismatch)
	}
	return p, nil
}

// FromPidfd wraps an existing pidfd (from SO_PEERPIDFD, an fd store, or
// clone's CLONE_PIDFD) and takes ownership of it: the *Process closes it.
// The fd must not be used by the caller afterwards, even on error. Like
// every pidfd proctree holds, it no longer tells the [Reaper] that someone
// will wait for the process: a caller that forked the child itself and
// will wait for it must hold a [ClaimChild] claim.
func FromPidfd(fd int) (*Process, error) {
	pid, err := pidfdPid(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("proctree: pidfd %d: %w", fd, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("proctree: pidfd %d: %w", fd, err)
	}
	p, err := newProcess(fd, pid)
	if err != nil {
		return nil, fmt.Errorf("proctree: pidfd %d (pid %d): %w", fd, pid, err)
	}
	return p, nil
}

// newProcess verifies the start time of the process fd refers to and wraps
// fd. It closes fd on error.
func newProcess(fd, pid int) (*Process, error) {
	st, err := readStat(pid)
	if err == nil {
		// The stat read above is the pidfd's process only if that process had
		// not been reaped when it was read: a pid is reused only after the
		// reap. A signal 0 through the pidfd succeeds until the reap.
		err = pidfdSignal(fd, 0)
	}
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrNotExist) {
			return nil, os.ErrProcessDone
		}
		return nil, err
	}
	own := trackOwnPidfd(fd, pid)
	var ino uint64
	if _, pidfs := pidfdKind(); pidfs {
		ino = own.ino
	}
	p := &Process{
		id:     Identity{Pid: pid, StartTime: st.StartTime, Ino: ino},
		stat:   st,
		own:    own,
		file:   os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid)),
		exited: make(chan struct{}),
	}
	// A *Process dropped without Close has its fd closed by the os.File
	// cleanup; forget the registry entry too (the entry's inode check keeps
	// a stale entry harmless meanwhile).
	p.cleanup = runtime.AddCleanup(p, untrackOwnPidfd, own)
	return p, nil
}

// Pid returns the process id the process had when it was opened.
func (p *Process) Pid() int { return p.id.Pid }

// Identity returns the pid and start time verified when p was opened.
func (p *Process) Identity() Identity { return p.id }

// Signal sends sig through the pidfd. It returns an error wrapping
// [os.ErrProcessDone] when the process has already been reaped (a zombie can
// still be signalled, to no effect). Signal 0 checks for existence.
func (p *Process) Signal(sig syscall.Signal) error {
	rc, err := p.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("proctree: signal pid %d: %w", p.id.Pid, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = pidfdSignal(int(fd), sig) }); err != nil {
		return fmt.Errorf("proctree: signal pid %d: %w", p.id.Pid, err)
	}
	if errors.Is(serr, syscall.ESRCH) {
		return fmt.Errorf("proctree: signal pid %d: %w", p.id.Pid, os.ErrProcessDone)
	}
	if serr != nil {
		return fmt.Errorf("proctree: signal %v to pid %d: %w", sig, p.id.Pid, serr)
	}
	return nil
}

// Exited reports, without blocking, whether the process has exited (it may
// still be an unreaped zombie).
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return p.watchErr == nil
	default:
	}
	rc, err := p.file.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	_ = rc.Control(func(fd uintptr) { ready = pidfdReady(int(fd)) })
	return ready
}

// Wait blocks until the process exits (a zombie counts as exited) or ctx is
// done. It works for any process, not only children, and never reaps: the
// exit status stays with the parent. Waiting costs no OS thread: the pidfd
// sits in Go's netpoller. Wait returns ctx.Err() when ctx ends first, and
// [os.ErrClosed] when p is closed while waiting.
func (p *Process) Wait(ctx context.Context) error {
	p.exitOnce.Do(p.startWatcher)
	select {
	case <-p.exited:
		return p.watchErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done returns a channel that is closed when the process exits or p is
// closed; [Process.Wait] tells which.
func (p *Process) Done() <-chan struct{} {
	p.exitOnce.Do(p.startWatcher)
	return p.exited
}

// startWatcher starts the one goroutine that waits for pidfd readiness. It
// ends when the process exits or the file is closed.
func (p *Process) startWatcher() {
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.watchErr = err
		close(p.exited)
		return
	}
	p.watcher.Add(1)
	go func() {
		defer p.watcher.Done()
		// Read's callback is retried each time the netpoller reports the fd
		// readable; a pidfd becomes readable once, when the process exits.
		err := rc.Read(func(fd uintptr) bool { return pidfdReady(int(fd)) })
		if err != nil {
			if p.closing.Load() {
				err = os.ErrClosed // the poller's own "use of closed file" is internal
			}
			p.watchErr = fmt.Errorf("proctree: wait for pid %d: %w", p.id.Pid, err)
		}
		close(p.exited)
	}()
}

// Close releases the pidfd and stops any goroutine waiting on it. Waiters
// then return an error wrapping [os.ErrClosed]. Close is idempotent.
func (p *Process) Close() error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		// Forget the fd before closing it: once closed, its number may name
		// someone else's pidfd, which the reaper must see as foreign.
		p.cleanup.Stop()
		untrackOwnPidfd(p.own)
		p.closeErr = p.file.Close()
		// Settle the watcher's start before waiting for it: either it was
		// started (and the Add happened inside Once) or it never will be,
		// and waiters see the process as closed.
		p.exitOnce.Do(func() {
			p.watchErr = fmt.Errorf("proctree: wait for pid %d: %w", p.id.Pid, os.ErrClosed)
			close(p.exited)
		})
		p.watcher.Wait()
	})
	return p.closeErr
}

// Dup returns a second, independent handle on p's process: a duplicate of
// its pidfd, so no pid is looked up and no reused pid can be picked up.
// Each handle is closed on its own. It fails with [os.ErrProcessDone] once
// the process has been reaped.
func (p *Process) Dup() (*Process, error) {
	nfd := -1
	err := p.WithPidfd(func(fd int) error {
		var err error
		nfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("proctree: duplicate the pidfd of pid %d: %w", p.Pid(), err)
	}
	return FromPidfd(nfd)
}

// WithPidfd calls fn with the raw pidfd, kept open for the duration of the
// call (to pass it to the fd store, or to waitid(P_PIDFD) as its parent).
func (p *Process) WithPidfd(fn func(fd int) error) error {
	rc, err := p.file.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func pidfdOpen(pid int) (int, error) {
	for {
		fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.ESRCH) {
			return -1, os.ErrProcessDone
		}
		if err != nil {
			return -1, os.NewSyscallError("pidfd_open", err)
		}
		return fd, nil
	}
}

func pidfdSignal(fd int, sig syscall.Signal) error {
	for {
		err := unix.PidfdSendSignal(fd, sig, nil, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("pidfd_send_signal", err)
		}
		return nil
	}
}

// pidfdReady reports whether the pidfd polls readable, i.e. the process has
// exited.
func pidfdReady(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return err == nil && n > 0 && pfd[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0
	}
}

// pidfdPid returns the pid a pidfd refers to (in the caller's pid namespace):
// PIDFD_GET_INFO where the kernel has it (6.13+), else the Pid: line of
// /proc/self/fdinfo/<fd>.
func pidfdPid(fd int) (int, error) {
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_PID}
	if err := unix.IoctlPidfdInfo(fd, &info); err == nil {
		return int(info.Pid), nil
	} else if errors.Is(err, syscall.ESRCH) {
		return 0, os.ErrProcessDone
	}
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	pid, err := parsePidfdInfo(f)
	if err != nil {
		return 0, err
	}
	if pid <= 0 { // -1: exited and reaped; 0: not in our pid namespace
		return 0, os.ErrProcessDone
	}
	return pid, nil
}
