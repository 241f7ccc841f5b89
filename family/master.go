package family

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// EnvVar is the environment variable that carries a master's connection
// info to its children: [InitChild] reads it, [Master.Env] formats it.
const EnvVar = "ORPHAND_FAMILY"

// Errors callers can test for with errors.Is.
var (
	ErrClosed         = errors.New("family: master is closed")
	ErrBusy           = errors.New("family: another ProcessChildData or StartDataHandler call is in progress")
	ErrHandlerRunning = errors.New("family: the data handler is running: use Collect, not ProcessChildData")
	ErrNoHandler      = errors.New("family: no data handler is running: call StartDataHandler first")
)

// eventQueue is how many events readers may hand over before they block
// (and their children with them) until the master consumes some.
const eventQueue = 64

// Master is the receiving end of a family: it listens on a private Unix
// socket, tracks the children that say hello, and keeps what they send.
// Its methods are safe for concurrent use.
type Master struct {
	opts  Options
	log   *slog.Logger
	dir   string // the private 0700 directory holding the socket
	path  string // the socket; the connection info
	ln    *net.UnixListener
	peers peerChecker

	budget  budget
	nextCID atomic.Int64
	events  chan event    // readers → the consumer (ProcessChildData or the handler)
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	connMu sync.Mutex // guards conns and closed
	conns  map[*net.UnixConn]struct{}
	closed bool

	mu   sync.RWMutex // guards view
	view *state       // what the read methods see

	modeMu     sync.Mutex // guards processing and handler
	processing bool
	handler    *handler
	collectMu  sync.Mutex // serialises Collect

	closeOnce sync.Once
	closeErr  error
}

// New makes a master listening on a fresh socket in a private directory.
// Give its [Master.ConnectionInfo] to children (for example with
// [Master.Env] in their environment), and Close it when done.
func New(opts Options) (*Master, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "orphand-family-")
	if err != nil {
		return nil, fmt.Errorf("family: making the socket directory (set Options.Dir to a writable place): %w", err)
	}
	path := filepath.Join(dir, "s")
	if len(path) > 107 {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("family: socket path %q is longer than a Unix socket allows (107 bytes): set Options.Dir to a shorter directory", path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("family: listening on %s: %w", path, err)
	}
	// The directory already keeps others out; the socket's own mode says
	// the same to anyone who looks.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("family: chmod %s: %w", path, err)
	}
	m := &Master{
		opts:   o,
		log:    o.Logger,
		dir:    dir,
		path:   path,
		ln:     ln,
		peers:  newPeerChecker(o),
		events: make(chan event, eventQueue),
		done:   make(chan struct{}),
		conns:  map[*net.UnixConn]struct{}{},
	}
	m.budget.limit = o.MemoryLimit
	m.view = newState(&m.budget)
	m.log.Debug("family: master listening", "socket", path, "peer_pidfd", m.peers.pidfd,
		"descendants_only", o.DescendantsOnly)
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// ConnectionInfo is what a child needs to reach this master: for now the
// absolute path of its socket. Treat it as opaque; pass it to [NewChild].
func (m *Master) ConnectionInfo() string { return m.path }

// Env is "ORPHAND_FAMILY=<connection info>", ready for exec.Cmd.Env.
func (m *Master) Env() string { return EnvVar + "=" + m.path }

// Close stops listening, drops every connection, stops the data handler,
// removes the socket directory, and waits for all of it. Data already
// gathered stays readable. Close is idempotent.
func (m *Master) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		lnErr := m.ln.Close()
		m.connMu.Lock()
		m.closed = true
		for c := range m.conns {
			_ = c.Close()
		}
		m.connMu.Unlock()
		m.wg.Wait()
		if lnErr != nil {
			lnErr = fmt.Errorf("family: closing the listener: %w", lnErr)
		}
		m.closeErr = errors.Join(lnErr, os.RemoveAll(m.dir))
	})
	return m.closeErr
}

func (m *Master) acceptLoop() {
	defer m.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := m.ln.AcceptUnix()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of fds or memory: wait a little rather than spin.
			m.log.Warn("family: accept failed", "err", err)
			select {
			case <-m.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if code, ok := m.track(c); !ok {
			m.log.Warn("family: connection refused", "reason", code, "max_conns", m.opts.MaxConns)
			refuse(c, frameErrorf(code, "the master has %d connections, its limit", m.opts.MaxConns))
			continue
		}
		m.wg.Add(1)
		go m.serve(c)
	}
}

// track registers c so Close can drop it, unless the limit is reached.
func (m *Master) track(c *net.UnixConn) (code string, ok bool) {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if m.closed {
		return CodeShuttingDown, false
	}
	if len(m.conns) >= m.opts.MaxConns {
		return CodeLimitExceeded, false
	}
	m.conns[c] = struct{}{}
	return "", true
}

func (m *Master) untrack(c *net.UnixConn) {
	m.connMu.Lock()
	delete(m.conns, c)
	m.connMu.Unlock()
	_ = c.Close()
}

// refuse tells the peer why, best effort, and closes c. The frame is small
// enough for any socket buffer, and the deadline covers a peer that
// somehow filled it.
func refuse(c *net.UnixConn, fe *FrameError) {
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(appendFrame(nil, frameError, fe.Code, []byte(fe.Msg)))
	_ = c.Close()
}
