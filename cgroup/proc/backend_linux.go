package proc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/proctree"
)

// Backend is the proc backend. It is safe for concurrent use.
//
// Lock order: b.mu, then the Watcher's and the connector's own locks
// (taken inside their methods). b.exitMu is never held with b.mu.
type Backend struct {
	cfg      Config
	log      *slog.Logger
	features cgroup.Features
	tracking string
	self     int   // the agent's pid: never tracked
	noConn   error // why the proc connector is not used (the fallback), nil with it

	watcher *proctree.Watcher // exits of killed members; in the fallback, of every member
	conn    *connector        // nil in the fallback
	stop    context.CancelFunc
	wg      sync.WaitGroup // the connector reader or the rescan loop
	kick    chan struct{}  // wakes the rescan loop (buffered, 1)

	exitMu sync.Mutex
	exited []*member // fallback: members whose exit the watcher reported

	mu     sync.Mutex // guards the fields below and every Group's and member's mutable fields
	groups map[string]*Group
	index  map[int]*member // pid → the tracked process (or ghost) holding it
	closed bool
	stats  Stats
}

// Stats counts what the backend did, for tests and the agent's status.
type Stats struct {
	Adopted   uint64 `json:"adopted"`   // processes that became members
	Walks     uint64 `json:"walks"`     // walks of /proc (rescans)
	Overflows uint64 `json:"overflows"` // times the kernel dropped proc connector events
}

// The contract (cgroup/backend.go): a backend that follows forks itself,
// places processes by group, and re-creates its groups after a restart.
var (
	_ cgroup.Backend   = (*Backend)(nil)
	_ cgroup.Recreator = (*Backend)(nil)
	_ cgroup.Placer    = (*Backend)(nil)
	_ cgroup.Tracker   = (*Backend)(nil)
)

// Open checks that pidfds work, probes the proc connector (unless
// cfg.NoConnector), logs which way forks will be seen, and starts the one
// goroutine that follows them. Close stops it.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.RescanInterval <= 0 {
		cfg.RescanInterval = DefaultRescanInterval
	}
	if cfg.ReceiveBuffer <= 0 {
		cfg.ReceiveBuffer = DefaultReceiveBuffer
	}
	self, err := proctree.Open(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("%w: proc: pidfd_open does not work here (Linux 5.3 or later is needed): %w", cgroup.ErrUnavailable, err)
	}
	self.Close()
	w, err := proctree.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("%w: proc: %w", cgroup.ErrUnavailable, err)
	}
	// The cgroup2 mount is not used; it is reported so that status shows
	// why a cgroup backend was not chosen.
	m, _ := cgroup.Discover()
	b := &Backend{
		cfg:      cfg,
		log:      log,
		features: cgroup.Features{Backend: Name, Mount: m.Path, Layout: m.Layout},
		self:     os.Getpid(),
		watcher:  w,
		kick:     make(chan struct{}, 1),
		groups:   map[string]*Group{},
		index:    map[int]*member{},
	}
	var why error
	if cfg.NoConnector {
		why = errors.New("disabled by configuration")
	} else {
		b.conn, why = openConnector(ctx, cfg.ReceiveBuffer, log)
	}
	runCtx, stop := context.WithCancel(context.Background())
	b.stop = stop
	if b.conn != nil {
		b.tracking = TrackConnector
		b.wg.Go(func() { b.conn.run(b.handleEvent, b.overflowed) })
		log.Info("proc backend: forks are followed with the proc connector", "receive_buffer", cfg.ReceiveBuffer)
	} else {
		b.tracking = TrackRescan
		b.noConn = why
		b.wg.Go(func() { b.rescanLoop(runCtx) })
		log.Warn("proc backend: proc connector unavailable; forks are found by walking /proc on exits and periodically, and a quick double fork can escape",
			"reason", why, "interval", cfg.RescanInterval)
	}
	return b, nil
}

// Name returns "proc".
func (b *Backend) Name() string { return Name }

// Features reports the probe: no cgroup is created, killed or frozen.
func (b *Backend) Features() cgroup.Features { return b.features }

// Tracking reports how forks are seen: TrackConnector or TrackRescan.
func (b *Backend) Tracking() string { return b.tracking }

// Limitations says in plain words what this backend cannot promise, and
// in the fallback why the proc connector is not used (an agent without
// CAP_NET_ADMIN, such as a per-user agent, cannot subscribe to it).
func (b *Backend) Limitations() []string {
	l := Limitations(b.tracking)
	if b.noConn != nil {
		l = append(l, "forks are found by walking /proc because the proc connector is unavailable: "+b.noConn.Error())
	}
	return l
}

// Stats returns counters of what the backend did.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Create makes a group and tracks spec.Pids and their descendants in it.
// A pid already tracked in another group moves to the new one, and so do
// its descendants tracked in a group the new one is nested in (as the
// agent moves a spawner's descendants that share its cgroup); descendants
// tracked in other groups stay there. The first pid (the spawner) must
// run; a later one that exited meanwhile has nothing left to track and is
// skipped. spec.Parent must be a group of this backend; spec.Stop and
// spec.Description are not used (nothing kills a proc group but the
// agent).
func (b *Backend) Create(ctx context.Context, spec cgroup.Spec) (cgroup.Group, error) {
	if err := cgroup.ValidateID(spec.ID); err != nil {
		return nil, err
	}
	ancestors := agentAncestors()
	procs := make([]*proctree.Process, 0, len(spec.Pids))
	for i, pid := range spec.Pids {
		p, err := b.openTarget(pid, ancestors)
		if i > 0 && errors.Is(err, os.ErrProcessDone) {
			continue
		}
		if err != nil {
			closeAll(procs)
			return nil, fmt.Errorf("proc: create %s: %w", spec.ID, err)
		}
		procs = append(procs, p)
	}
	return b.create(spec, procs)
}

// CreateWith is Create with the processes given by pidfd instead of by pid
// (spec.Pids is ignored): no pid is looked up, so none can have been
// reused meanwhile. The pidfds are duplicated; the caller keeps its
// handles. It is how a group is re-created after an agent restart, around
// its spawner found again by identity or from systemd's fd store.
func (b *Backend) CreateWith(ctx context.Context, spec cgroup.Spec, ps ...*proctree.Process) (cgroup.Group, error) {
	if err := cgroup.ValidateID(spec.ID); err != nil {
		return nil, err
	}
	ancestors := agentAncestors()
	procs := make([]*proctree.Process, 0, len(ps))
	for _, p := range ps {
		d, err := p.Dup()
		if err == nil && (d.Pid() == b.self || d.Exited() || ancestors[d.Pid()]) {
			d.Close()
			err = fmt.Errorf("pid %d is the agent, its ancestor, or gone: %w", p.Pid(), os.ErrProcessDone)
		}
		if err != nil {
			closeAll(procs)
			return nil, fmt.Errorf("proc: create %s: %w", spec.ID, err)
		}
		procs = append(procs, d)
	}
	return b.create(spec, procs)
}

// create makes the group and takes ownership of procs.
func (b *Backend) create(spec cgroup.Spec, procs []*proctree.Process) (cgroup.Group, error) {
	var parent *Group
	if spec.Parent != nil {
		p, ok := spec.Parent.(*Group)
		if !ok || p.b != b {
			closeAll(procs)
			return nil, fmt.Errorf("proc: create %s: the parent group %s belongs to another backend", spec.ID, spec.Parent.ID())
		}
		parent = p
	}
	b.mu.Lock()
	var err error
	switch {
	case b.closed:
		err = errBackendClosed
	case parent != nil && parent.removed:
		err = fmt.Errorf("proc: create %s: parent group %s: %w", spec.ID, parent.id, cgroup.ErrNotFound)
	case b.groups[spec.ID] != nil:
		err = fmt.Errorf("proc: create %s: %w", spec.ID, os.ErrExist)
	}
	if err != nil {
		b.mu.Unlock()
		closeAll(procs)
		return nil, err
	}
	g := &Group{b: b, id: spec.ID, parent: parent, children: map[*Group]struct{}{}, members: map[*member]struct{}{}}
	b.groups[g.id] = g
	if parent != nil {
		parent.children[g] = struct{}{}
	}
	roots := make([]int, len(procs))
	for i, p := range procs {
		roots[i] = p.Pid()
		b.attachLocked(g, p)
	}
	b.mu.Unlock()
	b.claimFromEnclosing(g, roots)
	b.settle(roots)
	b.wake()
	return g, nil
}

func closeAll(ps []*proctree.Process) {
	for _, p := range ps {
		p.Close()
	}
}

// Load returns the group ref names if this backend instance still tracks
// it. Nothing of a proc group is kept in the kernel: after an agent restart
// Load fails with an error wrapping cgroup.ErrNotFound, and the agent
// re-creates the group from its records (see the package doc).
func (b *Backend) Load(_ context.Context, ref cgroup.Ref) (cgroup.Group, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[ref.ID]
	if g == nil || ref.Path != "" || ref.Unit != "" {
		return nil, fmt.Errorf("proc: load %q: %w (proc groups do not outlive the agent)", ref.ID, cgroup.ErrNotFound)
	}
	return g, nil
}

// Groups lists the groups this backend instance tracks, parents before the
// groups nested in them. After a restart it is empty.
func (b *Backend) Groups(context.Context) ([]cgroup.Ref, error) {
	b.mu.Lock()
	gs := make([]*Group, 0, len(b.groups))
	for _, g := range b.groups {
		gs = append(gs, g)
	}
	b.mu.Unlock()
	slices.SortFunc(gs, func(x, y *Group) int {
		return cmp.Or(cmp.Compare(x.depth(), y.depth()), cmp.Compare(x.id, y.id))
	})
	refs := make([]cgroup.Ref, len(gs))
	for i, g := range gs {
		refs[i] = g.Ref()
	}
	return refs, nil
}

// GroupOf returns the id of the group that tracks pid now, if any.
func (b *Backend) GroupOf(pid int) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if g := b.groupOfLocked(pid); g != nil {
		return g.id, true
	}
	return "", false
}

func (b *Backend) groupOfLocked(pid int) *Group {
	m := b.index[pid]
	if m == nil || !m.live() || m.g.removed {
		return nil
	}
	return m.g
}

// PlaceOf is the proc backend's answer to "which cgroup is this process
// in?", which the agent asks to nest a registration in the group its
// spawner belongs to: the ids of the groups holding pid, outermost first,
// as a path ("/outer/inner"), or "" when no group tracks it (as far as
// the backend knows now: see Follow).
func (b *Backend) PlaceOf(pid int) string { return b.placeOf(pid) }

// Follow catches up with forks that may have made pid a member and were
// not followed yet (a process a tracked one forked moments ago): the proc
// connector's queued events first, then a walk from pid's nearest tracked
// ancestor. It does nothing for a pid already tracked.
func (b *Backend) Follow(ctx context.Context, pid int) {
	if b.placeOf(pid) != "" {
		return
	}
	if b.conn != nil {
		if err := b.conn.sync(ctx); err == nil && b.placeOf(pid) != "" {
			return
		}
	}
	seen := map[int]bool{}
	for a, i := pid, 0; a > 1 && i < 4096; i++ {
		st, err := proctree.ReadStat(a)
		if err != nil || seen[st.PPid] {
			return
		}
		a = st.PPid
		seen[a] = true
		b.mu.Lock()
		tracked := b.groupOfLocked(a) != nil
		b.mu.Unlock()
		if tracked {
			b.settle([]int{a})
			return
		}
	}
}

func (b *Backend) placeOf(pid int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if g := b.groupOfLocked(pid); g != nil {
		return g.Place()
	}
	return ""
}

// Close stops following forks and forgets every group; the processes are
// left alone. It is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.stop()
	var err error
	if b.conn != nil {
		err = b.conn.close()
	}
	b.wg.Wait()
	b.mu.Lock()
	for _, g := range b.groups {
		if g.parent == nil {
			b.removeLocked(g)
		}
	}
	b.mu.Unlock()
	if werr := b.watcher.Close(); err == nil {
		err = werr
	}
	return err
}

var errBackendClosed = fmt.Errorf("%w: proc: backend closed", cgroup.ErrUnavailable)

// wake tells the rescan loop that there is work (a new group, an exit).
func (b *Backend) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// ticks converts a CLOCK_MONOTONIC time in nanoseconds (a proc connector
// timestamp) to clock ticks after boot, the unit of a process's start
// time: stat's starttime counts CLOCK_BOOTTIME, which also counts time
// suspended, in USER_HZ (100) ticks.
func ticks(monoNsec uint64) uint64 {
	return (monoNsec + uint64(bootOffset())) / (uint64(time.Second) / 100)
}
