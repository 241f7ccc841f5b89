package cgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// safetyReread bounds how long a wait sleeps without re-reading
// cgroup.events. The kernel never drops a cgroup.events notification (it
// delays one that comes within ~10 ms of the previous and sends it when the
// window ends), so this only guards against the unforeseen; it is not how
// waits normally end.
const safetyReread = 250 * time.Millisecond

// eventsWatch watches one cgroup's cgroup.events: an inotify descriptor on
// Go's netpoller (no thread blocks on it) and the file itself, kept open and
// re-read from offset 0 after every wake-up, because notifications are only
// hints: they are rate-limited and say nothing about the new content.
type eventsWatch struct {
	ino    *os.File
	events *os.File
	buf    [4096]byte
	ibuf   [4096]byte

	mu        sync.Mutex // guards cancelled and the read deadline
	cancelled bool
}

// watchEvents arms an inotify watch on dirfd's cgroup.events. Arm it before
// acting on the cgroup, so that no change can happen unseen.
func watchEvents(dirfd int) (*eventsWatch, error) {
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	// The magic link resolves to exactly the directory dirfd holds, so the
	// watch cannot land on another file even if the tree changed meanwhile.
	path := "/proc/self/fd/" + strconv.Itoa(dirfd) + "/cgroup.events"
	if _, err := unix.InotifyAddWatch(ifd, path, unix.IN_MODIFY); err != nil {
		unix.Close(ifd)
		return nil, os.NewSyscallError("inotify_add_watch", err)
	}
	ev, err := openAt(dirfd, "cgroup.events", unix.O_RDONLY)
	if err != nil {
		unix.Close(ifd)
		return nil, err
	}
	// A non-blocking descriptor handed to os.NewFile joins the netpoller, so
	// Read parks the goroutine and honours deadlines.
	return &eventsWatch{ino: os.NewFile(uintptr(ifd), "inotify"), events: ev}, nil
}

func (w *eventsWatch) Close() {
	w.ino.Close()
	w.events.Close()
}

// read re-reads cgroup.events.
func (w *eventsWatch) read() (Events, error) {
	n, err := w.events.ReadAt(w.buf[:], 0)
	if n == 0 && err != nil {
		return Events{}, fmt.Errorf("cgroup: read cgroup.events: %w", err)
	}
	return ParseEvents(bytes.NewReader(w.buf[:n]))
}

// wait returns the first state for which done is true, re-reading the file
// after every notification. It returns ctx.Err() when ctx ends first.
func (w *eventsWatch) wait(ctx context.Context, done func(Events) bool) (Events, error) {
	w.mu.Lock()
	w.cancelled = false
	w.mu.Unlock()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.cancelled = true
		_ = w.ino.SetReadDeadline(time.Now()) // cannot fail: sleep checked it works
	})
	defer func() {
		if !stop() {
			<-fired // the callback ran or is running: wait for it to end
		}
	}()
	for {
		ev, err := w.read()
		if err != nil || done(ev) {
			return ev, err
		}
		if err := w.sleep(); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return ev, cerr
			}
			return ev, err
		}
	}
}

// sleep blocks until the next notification, the safety re-read, or
// cancellation (reported as an error).
func (w *eventsWatch) sleep() error {
	w.mu.Lock()
	if w.cancelled {
		w.mu.Unlock()
		return context.Canceled
	}
	err := w.ino.SetReadDeadline(time.Now().Add(safetyReread))
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cgroup: inotify is not pollable: %w", err)
	}
	_, err = w.ino.Read(w.ibuf[:])
	if errors.Is(err, os.ErrDeadlineExceeded) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.cancelled {
			return context.Canceled
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup: read inotify: %w", err)
	}
	return nil
}

func empty(ev Events) bool { return !ev.Populated }

func frozenOrEmpty(ev Events) bool { return ev.Frozen || !ev.Populated }
