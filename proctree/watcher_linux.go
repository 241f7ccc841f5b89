package proctree

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Watcher waits for the exit of many processes with one goroutine and one
// epoll instance, for programs that watch thousands of processes (the agent
// watches every spawner) where a goroutine each would cost too much memory.
//
// Each registration holds its own duplicate of the process's pidfd, so the
// *Process passed to [Watcher.Add] may be closed at any time. Epoll entries
// are keyed by a registration id, never by fd number (fd numbers are reused
// after close). While nothing exits the goroutine sleeps in epoll_wait with
// no timeout: an idle Watcher costs no wakeups.
type Watcher struct {
	epfd   int
	wakefd int // eventfd: Close writes to it to stop the goroutine

	mu     sync.Mutex // guards regs, nextID, closed
	regs   map[uint64]*watchReg
	nextID uint64
	closed bool

	done chan struct{} // closed when the goroutine has returned
}

type watchReg struct {
	fd     int    // duplicate pidfd, owned by the Watcher
	own    ownKey // its entry in the registry of proctree's own pidfds
	onExit func()
}

// wakeID is the epoll id of the eventfd; registration ids start at 1.
const wakeID = 0

// NewWatcher starts a Watcher. Close stops it.
func NewWatcher() (*Watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("proctree: new watcher: %w", os.NewSyscallError("epoll_create1", err))
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("proctree: new watcher: %w", os.NewSyscallError("eventfd", err))
	}
	if err := epollAdd(epfd, wakefd, wakeID); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("proctree: new watcher: %w", err)
	}
	w := &Watcher{
		epfd:   epfd,
		wakefd: wakefd,
		regs:   map[uint64]*watchReg{},
		nextID: wakeID + 1,
		done:   make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// Add calls onExit once, on the Watcher's goroutine, when p exits (a zombie
// counts as exited; an already exited p fires at once, possibly before Add
// has returned). onExit must not
// block: it delays every other notification. Hand the work to another
// goroutine or a buffered channel if it may take time. It may call Add and
// cancel functions.
//
// cancel removes the registration: after it returns, onExit will not be
// called, unless it had already been started. cancel is idempotent and may
// be called from onExit. Registrations still pending at [Watcher.Close]
// never fire.
func (w *Watcher) Add(p *Process, onExit func()) (cancel func(), err error) {
	if onExit == nil {
		return nil, fmt.Errorf("proctree: watch pid %d: nil onExit: %w", p.Pid(), syscall.EINVAL)
	}
	var dup int
	err = p.WithPidfd(func(fd int) error {
		var derr error
		dup, derr = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("proctree: watch pid %d: %w", p.Pid(), err)
	}
	reg := &watchReg{fd: dup, own: trackOwnPidfd(dup, p.Pid()), onExit: onExit}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		reg.close()
		return nil, ErrWatcherClosed
	}
	id := w.nextID
	w.nextID++
	w.regs[id] = reg
	if err := epollAdd(w.epfd, dup, id); err != nil {
		delete(w.regs, id)
		reg.close()
		return nil, fmt.Errorf("proctree: watch pid %d: %w", p.Pid(), err)
	}
	return func() { w.remove(id) }, nil
}

// Len returns the number of registrations that have neither fired nor been
// cancelled.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.regs)
}

// remove drops registration id, if it is still there, and returns it.
func (w *Watcher) remove(id uint64) *watchReg {
	w.mu.Lock()
	defer w.mu.Unlock()
	reg, ok := w.regs[id]
	if !ok {
		return nil
	}
	delete(w.regs, id)
	// Delete before close: closing only drops the entry when no other copy
	// of the open file description exists.
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, reg.fd, nil)
	reg.close()
	return reg
}

func (r *watchReg) close() {
	untrackOwnPidfd(r.own)
	unix.Close(r.fd)
}

// Close stops the goroutine, waits for it to return, and releases every
// registration without calling its onExit. Close must not be called from an
// onExit function. It is idempotent.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(w.wakefd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("proctree: close watcher: %w", os.NewSyscallError("write eventfd", err))
	}
	<-w.done
	w.mu.Lock()
	for id, reg := range w.regs {
		delete(w.regs, id)
		reg.close()
	}
	w.mu.Unlock()
	unix.Close(w.wakefd)
	unix.Close(w.epfd)
	return nil
}

// run is the Watcher's goroutine.
func (w *Watcher) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			// Only a programming error gets here (bad fd or buffer); stop
			// rather than spin. Pending registrations then never fire.
			slog.Default().Error("proctree: watcher stopped", "err", os.NewSyscallError("epoll_wait", err))
			return
		}
		for _, ev := range events[:n] {
			id := epollID(ev)
			if id == wakeID {
				return
			}
			// A registration cancelled after this event was queued is gone
			// from the map: remove returns nil and nothing fires.
			if reg := w.remove(id); reg != nil {
				reg.onExit()
			}
		}
	}
}

func epollAdd(epfd, fd int, id uint64) error {
	// EPOLLONESHOT: a pidfd stays readable after the exit; one event is
	// all a registration needs, and it is removed as it fires.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT}
	setEpollID(&ev, id)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// The 64-bit epoll_data is split into EpollEvent's Fd and Pad fields by
// golang.org/x/sys/unix; it carries the registration id whole.
func setEpollID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func epollID(ev unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
