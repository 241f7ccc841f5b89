package agent

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
)

// fakeFDStore keeps duplicates of what it is given, as systemd's fd store
// does, and hands duplicates back as a restarted service gets them.
type fakeFDStore struct {
	mu      sync.Mutex
	fds     map[string][]*os.File
	stores  int
	removes int
}

func newFakeFDStore(t *testing.T) *fakeFDStore {
	s := &fakeFDStore{fds: map[string][]*os.File{}}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, fs := range s.fds {
			for _, f := range fs {
				f.Close()
			}
		}
	})
	return s
}

func (s *fakeFDStore) Store(name string, fds ...int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fd := range fds {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return err
		}
		s.fds[name] = append(s.fds[name], os.NewFile(uintptr(nfd), name))
	}
	s.stores++
	return nil
}

func (s *fakeFDStore) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.fds[name] {
		f.Close()
	}
	delete(s.fds, name)
	s.removes++
	return nil
}

// names lists the names held, sorted.
func (s *fakeFDStore) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.fds {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// handBack duplicates every stored fd, named, as $LISTEN_FDS would pass it.
func (s *fakeFDStore) handBack(t *testing.T) []*os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*os.File
	for name, fs := range s.fds {
		for _, f := range fs {
			nfd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, os.NewFile(uintptr(nfd), name))
		}
	}
	return out
}

// logBuffer keeps an agent's log for assertions, and passes it to t.Log.
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// restartable runs agents one after the other on the same cgroupfs root,
// state directory and fake fd store, as a host running orphand under
// systemd would across restarts.
type restartable struct {
	t       *testing.T
	open    func() cgroup.Backend // a fresh backend for each agent
	backend cgroup.Backend        // the current agent's
	root    string                // the backend root's directory
	dir     string                // state directory
	fds     *fakeFDStore          // nil: no fd store
	log     *logBuffer
	cur     *testAgent
	durable *Durable
	// options, when set, gives each agent more options (a compatibility
	// socket).
	options func() []Option
}

func newRestartable(t *testing.T, withFDStore bool) *restartable {
	t.Helper()
	rel, dir := cgroupRoot(t)
	open := func() cgroup.Backend {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := cgroupfs.Open(ctx, cgroupfs.Config{Root: rel, Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("cgroupfs: %v", err)
		}
		return b
	}
	r := &restartable{t: t, open: open, root: dir, dir: filepath.Join(t.TempDir(), "state")}
	if withFDStore {
		r.fds = newFakeFDStore(t)
	}
	t.Cleanup(r.stop)
	return r
}

// start starts the next agent; it takes over what the last one left.
func (r *restartable) start() *testAgent {
	t := r.t
	t.Helper()
	r.log = &logBuffer{t: t}
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := DurableConfig{Dir: r.dir, Logger: log}
	if r.fds != nil {
		cfg.FDStore, cfg.Handed = r.fds, r.fds.handBack(t)
	}
	d, err := NewDurable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.durable = d
	r.backend = r.open()
	sock := filepath.Join(t.TempDir(), "orphand.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	c := testConfig()
	c.OnReady = func() { close(ready) }
	b := r.backend
	opts := []Option{WithDurable(d)}
	if r.options != nil {
		opts = append(opts, r.options()...)
	}
	a, err := New(c, b, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runAgent(t, a, ln, ready, func() {
		d.Close()
		b.Close()
	})
	r.cur = &testAgent{Agent: a, sock: sock, stop: stop}
	return r.cur
}

// stop stops the running agent, as SIGTERM would.
func (r *restartable) stop() {
	if r.cur != nil {
		r.cur.stop()
		r.cur = nil
	}
}

// restart stops the running agent, runs between (the downtime), and
// starts the next one.
func (r *restartable) restart(between func()) *testAgent {
	r.stop()
	if between != nil {
		between()
	}
	return r.start()
}
