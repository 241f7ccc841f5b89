package proc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// syncTimeout bounds the wait for the kernel's answer to a sync marker.
// The answer is lost only when the kernel drops events (an overflow, which
// releases the waiters, or an allocation failure under memory pressure,
// which this timeout covers).
const syncTimeout = 2 * time.Second

// markerOp is the connector operation sent as a sync marker: no valid
// operation (LISTEN is 1, IGNORE 2), so the kernel changes nothing — not
// the socket's subscription, not its count of listeners — and answers
// with an acknowledgement carrying EINVAL, queued behind every event
// already queued.
const markerOp = 0

var (
	errConnectorClosed = errors.New("proc connector closed")
	errSyncTimeout     = errors.New("proc connector: no answer to a sync marker")
)

// connector is a socket subscribed to the kernel's proc connector
// (drivers/connector/cn_proc.c): an event for every fork, exec and exit
// on the host. The kernel sends events only to sockets of the initial pid
// and user namespaces, and binding to the multicast group needs
// CAP_NET_ADMIN.
type connector struct {
	file *os.File // the socket, non-blocking, in Go's netpoller
	rc   syscall.RawConn
	log  *slog.Logger

	mu      sync.Mutex // guards the fields below
	nextAck uint32
	waiters map[uint32]chan struct{} // by the ack number the answer will carry
	closed  bool
}

// openConnector subscribes to the proc connector and checks, by waiting
// for the kernel's acknowledgement, that events will flow.
func openConnector(ctx context.Context, rcvbuf int, log *slog.Logger) (*connector, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("netlink connector socket: %w", os.NewSyscallError("socket", err))
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("subscribing to the proc connector needs CAP_NET_ADMIN: %w", os.NewSyscallError("bind", err))
		}
		return nil, fmt.Errorf("bind the proc connector: %w", os.NewSyscallError("bind", err))
	}
	// SO_RCVBUFFORCE goes beyond net.core.rmem_max (it needs CAP_NET_ADMIN,
	// which subscribing needed too); SO_RCVBUF is capped by it.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	c := &connector{
		file:    os.NewFile(uintptr(fd), "proc-connector"),
		log:     log,
		waiters: map[uint32]chan struct{}{},
	}
	if c.rc, err = c.file.SyscallConn(); err != nil {
		c.file.Close()
		return nil, err
	}
	var seed [4]byte
	_, _ = rand.Read(seed[:])
	c.nextAck = binary.NativeEndian.Uint32(seed[:])
	if err := c.subscribe(ctx); err != nil {
		c.file.Close()
		return nil, err
	}
	return c, nil
}

// probeTimeout bounds the wait for the kernel's answer to LISTEN. The
// answer is queued at once; the bound is only for a host so loaded that
// the agent is not scheduled.
const probeTimeout = 5 * time.Second

// subscribe sends LISTEN and waits for its acknowledgement. The kernel
// ignores, without an answer, a LISTEN from another pid or user namespace
// than the initial ones.
func (c *connector) subscribe(ctx context.Context) error {
	ack := c.nextAck
	c.nextAck++
	if err := c.send(mcastListen, ack); err != nil {
		return err
	}
	deadline := time.Now().Add(probeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.file.SetReadDeadline(deadline); err != nil {
		return err
	}
	defer func() { _ = c.file.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 8192)
	for {
		n, err := c.read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errors.New("the proc connector did not answer (it serves only the initial pid and user namespaces)")
		}
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			return err
		}
		var answer *procEvent
		_ = parseMessages(bytes.NewReader(buf[:n]), func(ev procEvent) {
			if ev.what == evNone && ev.ack == ack+1 {
				answer = &ev
			}
		})
		if answer != nil {
			if answer.err != 0 {
				return fmt.Errorf("the proc connector refused LISTEN: %w", syscall.Errno(answer.err))
			}
			return nil
		}
	}
}

// send sends a control message to the kernel.
func (c *connector) send(op, ack uint32) error {
	msg := controlMessage(op, ack)
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		for {
			serr = unix.Sendto(int(fd), msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
			if !errors.Is(serr, unix.EINTR) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("proc connector: %w", os.NewSyscallError("sendto", serr))
	}
	return nil
}

// read reads one datagram. A datagram that did not come from the kernel
// reads as zero bytes. ENOBUFS means the kernel dropped events.
func (c *connector) read(buf []byte) (int, error) {
	var (
		n    int
		rerr error
	)
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			var from unix.Sockaddr
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			switch {
			case errors.Is(rerr, unix.EINTR):
				continue
			case errors.Is(rerr, unix.EAGAIN):
				return false
			case rerr == nil:
				if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
					n = 0 // only the kernel speaks for the proc connector
				}
			}
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	return n, nil
}

// run reads events until the connector is closed, calling handle for each
// fork and exit, in the kernel's order, and overflow when events were lost.
// It is the only reader of the socket.
func (c *connector) run(handle func(procEvent), overflow func()) {
	buf := make([]byte, 64<<10)
	r := bytes.NewReader(nil)
	var p msgParser
	dispatch := func(ev procEvent) {
		if ev.what == evNone {
			c.answered(ev.ack)
			return
		}
		handle(ev)
	}
	for {
		n, err := c.read(buf)
		if err != nil {
			if c.isClosed() {
				return
			}
			if !errors.Is(err, unix.ENOBUFS) {
				c.log.Error("reading the proc connector failed; walking every group instead", "err", err)
				time.Sleep(10 * time.Millisecond) // never spin on a persistent error
			}
			overflow()
			c.releaseWaiters()
			continue
		}
		r.Reset(buf[:n])
		if err := p.parse(r, dispatch); err != nil {
			c.log.Debug("skipping a proc connector message", "err", err)
		}
	}
}

// sync returns once every event the kernel queued before the call has been
// handled: it sends a marker and waits for the reader to reach its answer.
func (c *connector) sync(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errConnectorClosed
	}
	ack := c.nextAck
	c.nextAck++
	done := make(chan struct{})
	c.waiters[ack+1] = done
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.waiters, ack+1)
		c.mu.Unlock()
	}
	if err := c.send(markerOp, ack); err != nil {
		forget()
		return err
	}
	t := time.NewTimer(syncTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		forget()
		return ctx.Err()
	case <-t.C:
		forget()
		return errSyncTimeout
	}
}

// answered releases the sync waiting for ack.
func (c *connector) answered(ack uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if done, ok := c.waiters[ack]; ok {
		close(done)
		delete(c.waiters, ack)
	}
}

// releaseWaiters releases every sync: after lost events, the walk that
// replaced them is the best that can be had.
func (c *connector) releaseWaiters() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ack, done := range c.waiters {
		close(done)
		delete(c.waiters, ack)
	}
}

func (c *connector) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// close unsubscribes and closes the socket, which ends run.
func (c *connector) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	_ = c.send(mcastIgnore, 0)
	c.releaseWaiters()
	return c.file.Close()
}
