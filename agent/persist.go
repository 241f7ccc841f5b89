package agent

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/orphand/orphand/agent/state"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// Records reach the disk in batches, written by one goroutine (persistLoop):
// a state change queues a copy of the group's Record while Agent.mu is held
// (no I/O under it), and whoever must not go on before the record is durable
// — a registration before its answer, a kill request before its first
// signal — waits for that copy's write. Changes queued while a write runs
// go in the next one, so concurrent registrations share one flush. A newer
// copy of a record replaces one still queued: only the latest state counts.

// pendingWrite is one record's queued change. Its done channel is closed
// once the change (or a newer one of the same record) is durable, or has
// failed (err is set before).
type pendingWrite struct {
	rec  *Record // nil deletes the record
	done chan struct{}
	err  error
}

// wait waits until w is written. A nil w (no store) is written at once.
// Call Agent.durably instead where the caller may do the write itself.
func (w *pendingWrite) wait(ctx context.Context) error {
	if w == nil {
		return nil
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queueLocked queues rec (nil: the deletion of id) for the next write and
// returns its pending write; nil when the agent has no store.
func (a *Agent) queueLocked(id string, rec *Record) *pendingWrite {
	if a.durable == nil {
		return nil
	}
	if rec != nil && rec.Boot == "" {
		rec.Boot = a.durable.boot
	}
	w := a.dirty[id]
	if w == nil {
		w = &pendingWrite{done: make(chan struct{})}
		a.dirty[id] = w
	}
	w.rec = rec
	select {
	case a.persistKick <- struct{}{}:
	default:
	}
	return w
}

// recordLocked queues a copy of g's Record.
func (a *Agent) recordLocked(g *group) *pendingWrite {
	r := g.Record
	r.Targets = slices.Clone(g.Targets)
	return a.queueLocked(g.ID, &r)
}

// pendingLocked returns the queued write of id, or nil if none is queued
// (nothing to wait for: what was queued is already being written or done).
func (a *Agent) pendingLocked(id string) *pendingWrite { return a.dirty[id] }

// notDurable is the answer to a request whose effect is in place but not
// yet on disk (the write is retried in the background).
func notDurable(id, what string, err error) error {
	return reqErr(ipc.CodeInternal, "group %s is %s, but writing its record to the state directory failed (%v); the agent retries, and until a write succeeds a restart would not know it",
		id, what, err)
}

// persistRetryMax caps the backoff between attempts after a failed write.
const persistRetryMax = 30 * time.Second

// durably waits until w is written. When no write is running the caller
// does it itself, with everything queued: on an idle agent a registration
// then costs its flushes and no hand-off to persistLoop's goroutine (which
// on a loaded machine costs more than the flush). When a write is running,
// w is in it or persistLoop, already woken, writes it next.
func (a *Agent) durably(ctx context.Context, w *pendingWrite) error {
	if w == nil {
		return nil
	}
	if a.persistMu.TryLock() {
		select {
		case <-w.done:
		default:
			a.persistOnce()
		}
		a.persistMu.Unlock()
	}
	return w.wait(ctx)
}

// persistLoop writes queued records until ctx ends, then writes what is
// left and returns.
func (a *Agent) persistLoop(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	var backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			retry.Stop()
			a.persistMu.Lock()
			a.persistOnce()
			a.persistMu.Unlock()
			return
		case <-a.persistKick:
		case <-retry.C:
		}
		a.persistMu.Lock()
		ok := a.persistOnce()
		a.persistMu.Unlock()
		if ok {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, time.Second), persistRetryMax)
		retry.Reset(backoff)
	}
}

// persistOnce writes everything queued, in one commit, and reports whether
// it worked. Call it with a.persistMu held. On failure the changes go back in the queue unless a newer
// change of the same record arrived meanwhile; their waiters get the error.
func (a *Agent) persistOnce() bool {
	a.mu.Lock()
	batch := a.dirty
	a.dirty = map[string]*pendingWrite{}
	a.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	changes := make([]state.Change, 0, len(batch))
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a stable order in the journal helps a reader
	for _, id := range ids {
		c := state.Change{ID: id}
		if r := batch[id].rec; r != nil {
			b, err := json.Marshal(r)
			if err != nil { // a Record always encodes; keep going without it
				a.log.Error("cannot encode a group's record", "group", id, "err", err)
				continue
			}
			c.Record = b
		}
		changes = append(changes, c)
	}
	err := a.durable.store.Commit(changes)
	if err != nil {
		a.log.Error("cannot write group records to the state directory; retrying (a restart now would not know the latest changes)",
			"dir", a.durable.store.Dir(), "records", len(changes), "err", err)
		a.mu.Lock()
		for id, w := range batch {
			if _, newer := a.dirty[id]; !newer {
				a.dirty[id] = &pendingWrite{rec: w.rec, done: make(chan struct{})}
			}
		}
		a.mu.Unlock()
	}
	for _, w := range batch {
		w.err = err
		close(w.done)
	}
	return err == nil
}

// persistIntent writes rec, a subtree group's record in state registering,
// before its cgroup exists: a crash between the cgroup's creation and the
// group's insertion then leaves a record that says whose cgroup it is.
func (a *Agent) persistIntent(ctx context.Context, rec Record) error {
	a.mu.Lock()
	w := a.queueLocked(rec.ID, &rec)
	a.mu.Unlock()
	if err := a.durably(ctx, w); err != nil {
		a.dropIntent(rec.ID)
		return reqErr(ipc.CodeInternal, "cannot write the new group's record to the state directory (%v); nothing was changed: fix the state directory and register again", err)
	}
	return nil
}

// dropIntent forgets the record of a registration that failed.
func (a *Agent) dropIntent(id string) {
	a.mu.Lock()
	a.queueLocked(id, nil)
	a.mu.Unlock()
}

// undoRegistration releases g, whose record could not be written, and
// returns the error to answer with: a group the agent acknowledged must
// survive a restart, so it is not acknowledged. Its processes stay in its
// cgroup, released (not watched; the cgroup goes once empty).
func (a *Agent) undoRegistration(g *group, err error) error {
	a.mu.Lock()
	if g.State == ipc.StateActive {
		if g.conn != nil {
			delete(g.conn.onDisconnect, g.ID)
			g.conn = nil
		}
		a.transitionLocked(g, ipc.StateReleased, ipc.Event{Event: ipc.EventReleased})
		a.lingerLocked(g)
	}
	a.mu.Unlock()
	a.unstoreGroupFDs(g)
	a.closeHandles(g)
	return reqErr(ipc.CodeInternal, "cannot write group %s's record to the state directory (%v), so it would not survive a restart: the registration is undone (the group is released, its processes left alone); fix the state directory and register again",
		g.ID, err)
}

// Stored pidfds are named after their group and role: a group's spawner
// (on=exit groups, while active) and its watch targets (watch groups; all
// under one name, told apart by their identity when they come back).
const fdNamePrefix = "pidfd."

func spawnerFDName(id string) string { return fdNamePrefix + id + ".spawner" }

func targetsFDName(id string) string { return fdNamePrefix + id + ".targets" }

// IsStoredFDName reports whether a descriptor name, as systemd passes it
// back in $LISTEN_FDNAMES, is one of the agent's stored pidfds (the rest,
// such as the socket unit's listener, are not the agent's to take).
func IsStoredFDName(name string) bool {
	_, _, ok := parseFDName(name)
	return ok
}

// parseFDName splits a stored pidfd's name into group id and role.
func parseFDName(name string) (id, role string, ok bool) {
	rest, ok := strings.CutPrefix(name, fdNamePrefix)
	if !ok {
		return "", "", false
	}
	id, role, ok = strings.Cut(rest, ".")
	if !ok || id == "" || (role != "spawner" && role != "targets") {
		return "", "", false
	}
	return id, role, true
}

// storeFDs hands the pidfds of ps to the fd store under name. Without an fd
// store it does nothing. Failures are logged: the records on disk are the
// truth, and a pidfd missing from the store only means the process is found
// again by pid and start time.
func (a *Agent) storeFDs(name string, ps ...*proctree.Process) {
	if a.durable == nil || a.durable.fds == nil {
		return
	}
	for _, p := range ps {
		if p == nil {
			continue
		}
		err := p.WithPidfd(func(fd int) error { return a.durable.fds.Store(name, fd) })
		if err != nil {
			a.fdStoreFailed("store", name, err)
			return
		}
	}
}

// unstoreFDs drops name from the fd store.
func (a *Agent) unstoreFDs(names ...string) {
	if a.durable == nil || a.durable.fds == nil {
		return
	}
	for _, name := range names {
		if err := a.durable.fds.Remove(name); err != nil {
			a.fdStoreFailed("remove", name, err)
		}
	}
}

// fdStoreFailed logs the first failure at warn level and the rest at debug
// level: a store that fails once (systemd busy, a full store) tends to fail
// for every group.
func (a *Agent) fdStoreFailed(what, name string, err error) {
	if a.durable.failures.Add(1) == 1 {
		a.log.Warn("the systemd fd store refused a pidfd; groups are still recorded on disk and found again by pid and start time after a restart",
			"op", what, "name", name, "err", err)
		return
	}
	a.log.Debug("fd store", "op", what, "name", name, "err", err)
}

// unstoreGroupFDs drops every pidfd of g from the fd store, once g has
// ended (or failed to register).
func (a *Agent) unstoreGroupFDs(g *group) {
	var names []string
	if g.On == ipc.OnExit {
		names = append(names, spawnerFDName(g.ID))
	}
	if g.Kind == ipc.KindWatch {
		names = append(names, targetsFDName(g.ID))
	}
	a.unstoreFDs(names...)
}
