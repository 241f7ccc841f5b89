package ipc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxResponseLine bounds one response line read by the [Client]. Requests
// are bounded by [MaxLine]; responses may be longer (a list of thousands of
// groups), so the client accepts more than it sends.
const MaxResponseLine = 32 << 20

// Errors wrapped by the [Client]. A request the agent refused fails with an
// [*Error] instead; use errors.As to get its Code.
var (
	// ErrUnreachable: no agent accepted the connection (Dial).
	ErrUnreachable = errors.New("orphand agent unreachable")
	// ErrDisconnected: the connection broke or the agent closed it.
	ErrDisconnected = errors.New("connection to the orphand agent lost")
	// ErrOutOfSync: a request was cancelled half-way through being sent,
	// so the connection can no longer be trusted; close it and dial again.
	ErrOutOfSync = errors.New("connection out of sync after a cancelled request")
	// ErrStreaming: the connection carries a subscription's events and
	// takes no more requests; use another Client for them.
	ErrStreaming = errors.New("connection is streaming events")
)

// SocketPath returns the agent socket clients use by default: the one
// [FindSocket] chooses with [ScopeAuto] — $ORPHAND_SOCKET when set, else
// the caller's per-user agent's socket if it exists, else [DefaultSocket].
func SocketPath() string { return FindSocket(ScopeAuto).Path }

// DialError is returned by [Dial] when no agent accepted the connection. It
// wraps [ErrUnreachable] and the system error, and its message says what to
// do about it.
type DialError struct {
	Path string
	Err  error
	// User is true when Path is the caller's per-user agent's socket
	// ([UserSocket]): the advice differs.
	User bool
}

func (e *DialError) Error() string {
	return fmt.Sprintf("cannot reach orphand at %s: %v (%s)", e.Path, e.Err, e.hint())
}

func (e *DialError) hint() string {
	if e.User {
		switch {
		case errors.Is(e.Err, syscall.ENOENT), errors.Is(e.Err, syscall.ECONNREFUSED):
			return "your per-user agent is not running: start it with `systemctl --user enable --now orphand.socket` " +
				"(or `orphand serve` as yourself), use the system agent (orphanctl --system), or set " + SocketEnv
		case errors.Is(e.Err, syscall.EACCES), errors.Is(e.Err, syscall.EPERM):
			return "permission denied: a per-user agent's socket serves only the user who runs it; " +
				"use your own (orphanctl --user) or the system agent (orphanctl --system)"
		}
	}
	switch {
	case errors.Is(e.Err, syscall.ENOENT):
		return "no socket there: is orphand running? Start it with `orphand serve` " +
			"(or `systemctl start orphand.socket`; without root, `systemctl --user enable --now orphand.socket`), or set " + SocketEnv + " to the agent's socket"
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "the socket exists but no agent is listening on it (a dead agent's leftover?): " +
			"start orphand, or set " + SocketEnv + " to the running agent's socket"
	case errors.Is(e.Err, syscall.EACCES), errors.Is(e.Err, syscall.EPERM):
		return "permission denied on the socket or its directory: the system agent's socket is meant " +
			"to be world-connectable (mode 0666), while a per-user agent's is its user's alone; " +
			"check how orphand was started, or set " + SocketEnv
	default:
		return "is orphand running? Start it with `orphand serve`, or set " + SocketEnv
	}
}

// Unwrap returns both the system error and [ErrUnreachable].
func (e *DialError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// Client is a connection to the agent. Its methods are safe for concurrent
// use: requests on one connection are serialised (one in flight at a time);
// open several clients for parallelism.
//
// A Client keeps its connection open until [Client.Close]: for a group
// registered with on=disconnect, closing the connection (or exiting) is the
// trigger that kills the group. The agent drops a connection that sends no
// request for a while (its idle_timeout, minutes) unless it holds such
// groups or a subscription: a long-lived program that only asks now and
// then should dial when it needs to, or dial again on [ErrDisconnected].
type Client struct {
	conn *net.UnixConn
	path string

	// sem holds the right to use the connection: one request (or one
	// subscription read) at a time. Waiting for it honours the context.
	sem chan struct{}

	// Guarded by sem.
	r         *bufio.Reader
	partial   []byte              // a response line read only in part before a cancellation
	abandoned map[string]struct{} // ids of requests sent but whose response was not read
	broken    error               // set when the connection can take no more requests
	streaming bool                // a subscription owns the connection

	nextID    atomic.Uint64
	closeOnce sync.Once
	closeErr  error
}

// Dial connects to the agent socket at path; an empty path means
// [SocketPath] (see [FindSocket] for the order). A connection failure
// returns a [*DialError].
func Dial(ctx context.Context, path string) (*Client, error) {
	if path == "" {
		path = SocketPath()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial orphand at %s: %w", path, ctx.Err())
		}
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		var sys *os.SyscallError
		if errors.As(err, &sys) {
			err = sys.Err
		}
		return nil, &DialError{Path: path, Err: err, User: path == UserSocket()}
	}
	return newClient(conn.(*net.UnixConn), path), nil
}

func newClient(conn *net.UnixConn, path string) *Client {
	c := &Client{
		conn:      conn,
		path:      path,
		sem:       make(chan struct{}, 1),
		r:         bufio.NewReaderSize(conn, 64<<10),
		abandoned: map[string]struct{}{},
	}
	return c
}

// Path returns the socket path the client connected to.
func (c *Client) Path() string { return c.path }

// Close closes the connection. A request in flight fails. Closing is the
// trigger of groups this connection registered with on=disconnect.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// SyscallConn gives access to the connection's file descriptor, for a
// program that hands the connection to a command it execs (orphanctl run
// --on disconnect clears close-on-exec on it).
func (c *Client) SyscallConn() (syscall.RawConn, error) { return c.conn.SyscallConn() }

// Do sends req and returns the agent's response. It sets req.ID (ids are
// the client's own) and checks that the response echoes it. A response
// with ok=false is returned together with its [*Error].
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	if c.streaming {
		return nil, fmt.Errorf("%s request: %w", req.Op, ErrStreaming)
	}
	return c.roundTripLocked(ctx, req)
}

func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) release() { <-c.sem }

// roundTripLocked writes one request and reads its response. The caller
// holds sem.
func (c *Client) roundTripLocked(ctx context.Context, req Request) (*Response, error) {
	if c.broken != nil {
		return nil, fmt.Errorf("%s request: %w", req.Op, c.broken)
	}
	id := strconv.FormatUint(c.nextID.Add(1), 10)
	req.ID = json.RawMessage(id)
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", req.Op, err)
	}
	line = append(line, '\n')
	if len(line) > MaxLine {
		return nil, fmt.Errorf("%s request is %d bytes, over the protocol's limit of %d: send fewer pids", req.Op, len(line), MaxLine)
	}

	release := c.watchContext(ctx)
	defer release()

	if n, err := c.conn.Write(line); err != nil {
		if refused := c.refusalLocked(n, err); refused != nil {
			return nil, refused
		}
		if n > 0 && n < len(line) {
			c.broken = ErrOutOfSync
		}
		return nil, c.ioError(ctx, req.Op, "send", err)
	}
	for {
		raw, err := c.readLineLocked()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.abandoned[id] = struct{}{} // ctx ended; its answer may still come
			}
			return nil, c.ioError(ctx, req.Op, "read response", err)
		}
		var resp Response
		if err := json.Unmarshal(raw, &resp); err != nil {
			c.broken = fmt.Errorf("%w: undecodable response line: %w", ErrOutOfSync, err)
			return nil, fmt.Errorf("%s request: agent sent %w", req.Op, c.broken)
		}
		got := string(bytes.TrimSpace(resp.ID))
		if got != "" && got != id {
			if _, old := c.abandoned[got]; old {
				delete(c.abandoned, got) // the late answer to a cancelled request
				continue
			}
			c.broken = fmt.Errorf("%w: response id %s, want %s", ErrOutOfSync, got, id)
			return nil, fmt.Errorf("%s request: %w", req.Op, c.broken)
		}
		// A response without an id answers this request: the agent could not
		// read an id from a line it could not parse. Otherwise it echoes ours.
		if !resp.OK {
			if resp.Error == nil {
				resp.Error = &Error{Code: CodeInternal, Message: "agent answered ok=false without an error"}
			}
			return &resp, resp.Error
		}
		return &resp, nil
	}
}

// watchContext makes blocking I/O on the connection end when ctx does, and
// returns the function that undoes it. The caller holds sem.
func (c *Client) watchContext(ctx context.Context) (undo func()) {
	deadline, _ := ctx.Deadline() // zero when none: no deadline
	_ = c.conn.SetDeadline(deadline)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		// A deadline in the past wakes a blocked Read or Write at once.
		_ = c.conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired // the deadline was set: wait so that clearing it wins
		}
		_ = c.conn.SetDeadline(time.Time{})
	}
}

// readLineLocked reads one line, keeping a part read before a timeout so
// that the next read completes it. The caller holds sem.
func (c *Client) readLineLocked() ([]byte, error) {
	for {
		chunk, err := c.r.ReadSlice('\n')
		if len(c.partial)+len(chunk) > MaxResponseLine {
			c.partial = nil
			c.broken = fmt.Errorf("%w: a response line is over %d bytes", ErrOutOfSync, MaxResponseLine)
			return nil, c.broken
		}
		c.partial = append(c.partial, chunk...)
		switch {
		case err == nil:
			line := c.partial
			c.partial = nil
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// refusalLocked reads the line an agent that hung up on us left behind:
// an agent that refuses a connection (a per-user agent called by another
// uid, a connection limit) answers before any request and closes, and a
// send that comes after the close fails with EPIPE while the answer is
// still to be read. It returns that answer's error, or nil. The caller
// holds sem.
func (c *Client) refusalLocked(sent int, err error) *Error {
	if sent != 0 || !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	raw, rerr := c.readLineLocked()
	var resp Response
	if rerr == nil && json.Unmarshal(raw, &resp) == nil && !resp.OK && resp.Error != nil && len(bytes.TrimSpace(resp.ID)) == 0 {
		c.broken = ErrDisconnected
		return resp.Error
	}
	return nil
}

// ioError turns a connection error into one that says what happened.
func (c *Client) ioError(ctx context.Context, op, what string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// watchContext sets the only deadlines: ctx has ended, even if its
		// own timer has not marked it done yet.
		ctxErr := ctx.Err()
		if ctxErr == nil {
			ctxErr = context.DeadlineExceeded
		}
		return fmt.Errorf("%s request: %s: %w", op, what, ctxErr)
	}
	if errors.Is(err, ErrOutOfSync) {
		return fmt.Errorf("%s request: %s: %w", op, what, err)
	}
	if errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%s request: %s: client closed: %w", op, what, err)
	}
	c.broken = ErrDisconnected
	return fmt.Errorf("%s request: %s from orphand at %s: %w (%w)", op, what, c.path, ErrDisconnected, err)
}
