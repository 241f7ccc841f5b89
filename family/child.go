package family

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultDialTimeout bounds connecting and saying hello in [InitChild] and
// [NewChild]; use [NewChildContext] to choose.
const DefaultDialTimeout = 30 * time.Second

// Errors of the child side.
var (
	ErrNoMaster    = errors.New("family: $" + EnvVar + " is not set: this process was not started by a family master (or the variable was not passed on)")
	ErrTooLarge    = errors.New("family: key or value over the master's limits")
	ErrChildClosed = errors.New("family: child is closed")
)

// RefusedError is the reason a master gave, in an error frame, for
// refusing a connection or dropping it. Err is the local error that made
// the child look (nil when the refusal came in answer to hello).
type RefusedError struct {
	Code    string // one of the Code… constants
	Message string
	Err     error
}

func (e *RefusedError) Error() string {
	return "family: the master refused: " + e.Code + ": " + e.Message
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Child is the sending end of a family: a connection to a master that has
// said hello. Its methods are safe for concurrent use; each value is sent
// whole, never interleaved with another.
type Child struct {
	mu     sync.Mutex // guards conn writes, err and closed
	conn   *net.UnixConn
	fr     *frameReader
	w      welcome
	name   string
	err    error // sticky: a send failed part-way, the stream is unusable
	closed bool
}

// InitChild connects to the master named by $ORPHAND_FAMILY ([EnvVar]) and
// says hello as name (empty: this process's pid). It is the seed's
// init_child.
func InitChild(name string) (*Child, error) {
	info := os.Getenv(EnvVar)
	if info == "" {
		return nil, ErrNoMaster
	}
	return NewChild(info, name)
}

// NewChild connects to the master whose [Master.ConnectionInfo] is info and
// says hello as name (empty: this process's pid). It is the seed's
// new_child, used for replies in bi-directional families.
func NewChild(info, name string) (*Child, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDialTimeout)
	defer cancel()
	return NewChildContext(ctx, info, name)
}

// NewChildContext is [NewChild] bounded by ctx.
func NewChildContext(ctx context.Context, info, name string) (*Child, error) {
	if name == "" {
		name = strconv.Itoa(os.Getpid())
	}
	if len(name) > MaxKeyLimit {
		return nil, fmt.Errorf("family: child name of %d bytes: %w", len(name), ErrTooLarge)
	}
	if !strings.HasPrefix(info, "/") {
		return nil, fmt.Errorf("family: connection info %q is not a socket path: pass what Master.ConnectionInfo returned", info)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", info)
	if err != nil {
		return nil, fmt.Errorf("family: connecting to master at %s (is it running, and may this user reach it?): %w", info, err)
	}
	c := &Child{conn: nc.(*net.UnixConn), name: name}
	c.fr = newFrameReader(c.conn, limits{maxKey: MaxKeyLimit})
	if err := c.hello(ctx); err != nil {
		_ = c.conn.Close()
		return nil, err
	}
	return c, nil
}

// hello sends the hello frame and reads the master's answer.
func (c *Child) hello(ctx context.Context) error {
	stop := bindDeadline(ctx, c.conn)
	// Read the answer even if the write failed: a master that refuses at
	// once (wrong uid, too many connections) has left its reason there.
	_, werr := c.conn.Write(appendFrame(nil, frameHello, c.name, helloValue(ProtocolVersion)))
	f, err := c.fr.readFrame()
	stop()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case werr != nil:
			err = werr
		}
		return fmt.Errorf("family: saying hello to the master: %w", err)
	}
	switch f.typ {
	case frameWelcome:
		w, err := parseWelcome(f.value)
		if err != nil {
			return err
		}
		if w.version < 1 || w.version > ProtocolVersion {
			return fmt.Errorf("family: the master chose protocol version %d; this child speaks 1..%d", w.version, ProtocolVersion)
		}
		c.w = w
		return nil
	case frameError:
		return &RefusedError{Code: f.key, Message: string(f.value)}
	}
	return fmt.Errorf("family: the master answered hello with a %s frame", frameName(f.typ))
}

// bindDeadline makes c's I/O fail when ctx ends, until stop is called.
// After stop, c has no deadline, whether or not ctx ended meanwhile.
func bindDeadline(ctx context.Context, c *net.UnixConn) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	var (
		mu      sync.Mutex
		stopped bool
	)
	cancel := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			_ = c.SetDeadline(time.Unix(1, 0))
		}
	})
	return func() {
		cancel()
		mu.Lock()
		stopped = true
		mu.Unlock()
		_ = c.SetDeadline(time.Time{})
	}
}

// CID is the child's id at its master.
func (c *Child) CID() int { return c.w.cid }

// Name is the name the child said hello with.
func (c *Child) Name() string { return c.name }

// MaxValueSize is the largest value the master accepts.
func (c *Child) MaxValueSize() int64 { return c.w.maxValue }

// ToMaster sends value under key; the master keeps the last value sent
// under each key (the seed's to_master). It returns once the value is
// handed to the kernel, which may wait for the master to catch up. After
// an error the child is unusable: the master dropped it or the stream broke
// part-way through a value.
func (c *Child) ToMaster(key string, value []byte) error {
	return c.send(context.Background(), frameSet, key, value)
}

// PushToMaster appends value to the queue key at the master (the seed's
// push_to_master). Errors are as for ToMaster.
func (c *Child) PushToMaster(key string, value []byte) error {
	return c.send(context.Background(), framePush, key, value)
}

// ToMasterContext is [Child.ToMaster] bounded by ctx.
func (c *Child) ToMasterContext(ctx context.Context, key string, value []byte) error {
	return c.send(ctx, frameSet, key, value)
}

// PushToMasterContext is [Child.PushToMaster] bounded by ctx.
func (c *Child) PushToMasterContext(ctx context.Context, key string, value []byte) error {
	return c.send(ctx, framePush, key, value)
}

func (c *Child) send(ctx context.Context, typ byte, key string, value []byte) error {
	if len(key) > c.w.maxKey {
		return fmt.Errorf("family: key of %d bytes, the master takes %d: %w", len(key), c.w.maxKey, ErrTooLarge)
	}
	if int64(len(value)) > c.w.maxValue {
		return fmt.Errorf("family: value of %d bytes, the master takes %d: %w", len(value), c.w.maxValue, ErrTooLarge)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrChildClosed
	}
	if c.err != nil {
		return c.err
	}
	if ctx.Done() != nil {
		defer bindDeadline(ctx, c.conn)()
	}
	// One writev: header, key and the caller's value, which is not copied.
	hdr := appendHeader(make([]byte, 0, headerSize), typ, len(key), int64(len(value)))
	bufs := net.Buffers{hdr, []byte(key), value}
	if _, err := bufs.WriteTo(c.conn); err != nil {
		if ctx.Err() != nil {
			c.err = fmt.Errorf("family: sending to the master: %w (%w)", ctx.Err(), err)
		} else {
			c.err = c.why(err)
		}
		return c.err
	}
	return nil
}

// why looks for the master's reason after a failed write: an error frame
// it sent before closing.
func (c *Child) why(err error) error {
	_ = c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, rerr := c.fr.readFrame(); rerr == nil && f.typ == frameError {
		return &RefusedError{Code: f.key, Message: string(f.value), Err: err}
	}
	return fmt.Errorf("family: sending to the master: %w", err)
}

// Close ends the child's connection; the master sees it disconnect once it
// has read everything sent before.
func (c *Child) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("family: closing the child: %w", err)
	}
	return nil
}
