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
	"unsafe"

	"golang.org/x/sys/unix"
)

// safetyReread bounds how long a wait sleeps without re-reading
// cgroup.events. The kernel never drops a cgroup.events notification (it
// delays one that comes within ~10 ms of the previous and sends it when the
// window ends), so this only guards against the unforeseen; it is not how
// waits normally end.
const safetyReread = 250 * time.Millisecond

// pollInterval is how often a wait re-reads cgroup.events when no inotify
// watch could be had (the per-user limits on inotify instances or watches
// are exhausted): degraded, but a kill must still finish.
const pollInterval = 5 * time.Millisecond

// notifier is one inotify instance shared by every wait of an FS, with one
// goroutine that reads it and wakes the waiters of each watch. One instance
// per kill would not do: inotify instances are limited per user (128 by
// default) and the agent kills many groups at once.
type notifier struct {
	file *os.File // the inotify descriptor, on Go's netpoller
	done chan struct{}

	mu   sync.Mutex // guards subs and the adding/removing of watches
	subs map[int32]map[*subscription]struct{}
}

// subscription is one waiter's interest in one cgroup.events file.
type subscription struct {
	wd   int32
	wake chan struct{} // buffered 1: a pending wake-up is never lost or doubled
}

func newNotifier() (*notifier, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	n := &notifier{
		// A non-blocking descriptor handed to os.NewFile joins the netpoller:
		// the reader parks instead of holding a thread.
		file: os.NewFile(uintptr(fd), "inotify"),
		done: make(chan struct{}),
		subs: map[int32]map[*subscription]struct{}{},
	}
	go n.run()
	return n, nil
}

// run reads events until the descriptor is closed and wakes the waiters.
func (n *notifier) run() {
	defer close(n.done)
	buf := make([]byte, 64*unix.SizeofInotifyEvent)
	for {
		k, err := n.file.Read(buf)
		if err != nil {
			n.wakeAll() // closed (or broken): let every waiter re-read
			return
		}
		n.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			for s := range n.subs[ev.Wd] {
				wake(s)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		n.mu.Unlock()
	}
}

func wake(s *subscription) {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, set := range n.subs {
		for s := range set {
			wake(s)
		}
	}
}

// watch subscribes to changes of path. inotify returns the same watch
// descriptor for the same file, so concurrent waits on one cgroup share it;
// adding and removing happen under mu so a watch is never removed while
// another subscriber believes it is alive.
func (n *notifier) watch(path string) (*subscription, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var wd int
	err := n.withFD(func(fd int) (err error) {
		wd, err = unix.InotifyAddWatch(fd, path, unix.IN_MODIFY)
		return err
	})
	if err != nil {
		return nil, os.NewSyscallError("inotify_add_watch", err)
	}
	s := &subscription{wd: int32(wd), wake: make(chan struct{}, 1)}
	if n.subs[s.wd] == nil {
		n.subs[s.wd] = map[*subscription]struct{}{}
	}
	n.subs[s.wd][s] = struct{}{}
	return s, nil
}

func (n *notifier) unwatch(s *subscription) {
	n.mu.Lock()
	defer n.mu.Unlock()
	set := n.subs[s.wd]
	delete(set, s)
	if len(set) == 0 {
		delete(n.subs, s.wd)
		// EINVAL: the kernel dropped the watch already (the cgroup is gone).
		_ = n.withFD(func(fd int) error {
			_, err := unix.InotifyRmWatch(fd, uint32(s.wd))
			return err
		})
	}
}

func (n *notifier) withFD(fn func(fd int) error) error {
	rc, err := n.file.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// close stops the reader and waits for it.
func (n *notifier) close() {
	n.file.Close()
	<-n.done
}

// notifierFor returns the FS's shared notifier, creating it on first use.
// When inotify is unavailable it returns nil and waits poll instead; it
// tries again on the next call, since the limit may have freed up.
func (fs *FS) notifierFor() *notifier {
	fs.notifyMu.Lock()
	defer fs.notifyMu.Unlock()
	if fs.closed || fs.noInotify {
		return nil
	}
	if fs.notify == nil {
		n, err := newNotifier()
		if err != nil {
			fs.warnPolling(err)
			return nil
		}
		fs.notify = n
	}
	return fs.notify
}

func (fs *FS) warnPolling(err error) {
	if fs.warnedPoll.CompareAndSwap(false, true) {
		fs.log.Warn("no inotify for cgroup.events; kills poll it instead (raise fs.inotify.max_user_instances or max_user_watches)", "err", err)
	}
}

func (fs *FS) closeNotifier() {
	fs.notifyMu.Lock()
	n := fs.notify
	fs.notify, fs.closed = nil, true
	fs.notifyMu.Unlock()
	if n != nil {
		n.close()
	}
}

// eventsWatch is one wait on one cgroup's cgroup.events: a subscription to
// the shared notifier (nil when polling) and the file itself, kept open and
// re-read from offset 0 after every wake-up, because notifications are only
// hints: rate-limited, and silent about the new content.
type eventsWatch struct {
	n      *notifier
	sub    *subscription
	events *os.File
	buf    [256]byte
}

// watchEvents arms a watch on dirfd's cgroup.events. Arm it before acting
// on the cgroup, so that no change can happen unseen.
func (fs *FS) watchEvents(dirfd int) (*eventsWatch, error) {
	ev, err := openAt(dirfd, "cgroup.events", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	w := &eventsWatch{events: ev}
	if n := fs.notifierFor(); n != nil {
		// The magic link resolves to exactly the directory dirfd holds, so
		// the watch cannot land on another file.
		s, err := n.watch("/proc/self/fd/" + strconv.Itoa(dirfd) + "/cgroup.events")
		if err != nil {
			fs.warnPolling(err)
		} else {
			w.n, w.sub = n, s
		}
	}
	return w, nil
}

func (w *eventsWatch) Close() {
	if w.sub != nil {
		w.n.unwatch(w.sub)
	}
	w.events.Close()
}

// read re-reads cgroup.events.
func (w *eventsWatch) read() (Events, error) {
	n, err := w.events.ReadAt(w.buf[:], 0)
	if errors.Is(err, unix.ENODEV) {
		// The cgroup was removed (systemd removes an emptied scope's cgroup
		// at once): a removed cgroup has no processes.
		return Events{}, nil
	}
	if n == 0 && err != nil {
		return Events{}, fmt.Errorf("cgroup: read cgroup.events: %w", err)
	}
	return ParseEvents(bytes.NewReader(w.buf[:n]))
}

// wait returns the first state for which done is true, re-reading the file
// after every wake-up. It returns ctx.Err() when ctx ends first.
func (w *eventsWatch) wait(ctx context.Context, done func(Events) bool) (Events, error) {
	var wake <-chan struct{}
	interval := pollInterval
	if w.sub != nil {
		wake, interval = w.sub.wake, safetyReread
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		ev, err := w.read()
		if err != nil || done(ev) {
			return ev, err
		}
		t.Reset(interval)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			return ev, ctx.Err()
		}
	}
}

func empty(ev Events) bool { return !ev.Populated }

func frozenOrEmpty(ev Events) bool { return ev.Frozen || !ev.Populated }
