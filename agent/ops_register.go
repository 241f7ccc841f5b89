package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orphand/orphand/agent/internal/crashpoint"
	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

// maxEscapePasses bounds the re-checks for children forked while a
// registration moves processes. Each pass only finds children forked
// before their parent moved, so a few passes always suffice; the bound
// only guards against a bug.
const maxEscapePasses = 64

func (a *Agent) opRegister(ctx context.Context, c *conn, req ipc.Request, resp *ipc.Response) error {
	s, err := a.settingsFrom(req)
	if err != nil {
		return err
	}
	a.mu.Lock()
	release, err := a.reserveGroupLocked(c.peer.caller, 0)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	defer release()
	host := a.policyHost()
	spawner, err := c.target(req.Pid, "register", host)
	if err != nil {
		return err
	}
	g, members, err := a.registerSubtree(ctx, c, s, req.Parent, spawner, host)
	if err != nil {
		spawner.Close()
		return err
	}
	a.mu.Lock()
	w := g.wireLocked(members)
	a.mu.Unlock()
	resp.Group = &w
	return nil
}

// registerSubtree moves the spawner and its current descendants into a new
// group, then catches children forked meanwhile, inserts the group and
// starts watching the spawner. It returns the group and its member count.
func (a *Agent) registerSubtree(ctx context.Context, c *conn, s settings, parentID string, spawner *proctree.Process, host policy.Host) (*group, int, error) {
	caller := c.peer.caller
	origin, err := a.originOf(ctx, spawner.Pid())
	if err != nil {
		return nil, 0, noSuchProcess(spawner.Pid(), err)
	}
	a.mu.Lock()
	parent, err := a.parentLocked(caller, parentID, origin)
	a.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	pids, adopt, err := a.collect(caller, host, spawner.Pid(), origin, "register")
	if err != nil {
		return nil, 0, err
	}
	id := newGroupID()
	spec := cgroup.Spec{ID: id, Pids: pids, Description: describe(id, s.name, spawner.Pid(), caller.UID), Stop: s.stop()}
	rec := Record{
		ID: id, Name: s.name, Kind: ipc.KindSubtree, On: s.on, OwnerUID: caller.UID,
		Spawner: spawner.Identity(), Signal: s.signal, GraceMS: s.graceMS,
		Backend: a.backend.Name(), Ref: cgroup.Ref{ID: id}, Created: time.Now(), State: stateRegistering,
	}
	if parent != nil {
		spec.Parent, rec.Parent = parent.cg, parent.ID
	}
	if err := a.persistIntent(ctx, rec); err != nil {
		return nil, 0, err
	}
	crashpoint.Reach("register.intent", id)
	cg, err := a.backend.Create(ctx, spec)
	if err != nil {
		a.dropIntent(id)
		if spawner.Exited() || spawner.Signal(0) != nil {
			return nil, 0, reqErr(ipc.CodeNoSuchProcess, "pid %d exited while its group was being created", spawner.Pid())
		}
		return nil, 0, fmt.Errorf("create the group's cgroup (backend %s): %w", a.backend.Name(), err)
	}
	members, err := a.catchEscapees(ctx, cg, origin)
	if err != nil {
		a.log.Warn("re-checking a new group for children forked during registration failed", "group", id, "err", err)
	}
	crashpoint.Reach("register.created", id)
	rec.Ref, rec.State = cg.Ref(), ""
	g := &group{Record: rec, cg: cg, spawnerProc: spawner, children: map[string]*group{}}
	if g.On == ipc.OnExit {
		a.storeFDs(spawnerFDName(id), spawner) // before the group can end (and unstore it)
	}
	if err := a.durably(ctx, a.insert(c, g, parent, adopt)); err != nil {
		return nil, 0, a.undoRegistration(g, err)
	}
	crashpoint.Reach("register.persisted", id)
	return g, len(members), nil
}

// parentLocked finds the group a new one nests in: the one the request
// names, else the one whose cgroup holds the spawner now.
func (a *Agent) parentLocked(caller policy.Caller, parentID, origin string) (*group, error) {
	var parent *group
	if parentID != "" {
		p, err := a.lookupLocked(caller, "nest a group in", parentID)
		if err != nil {
			return nil, err
		}
		if !p.placed() {
			return nil, reqErr(ipc.CodeBadRequest, "group %s is a watch group; only groups with a cgroup (subtree and compat groups) can hold nested groups", p.ID)
		}
		parent = p
	} else {
		parent = a.enclosingLocked(origin)
	}
	if parent != nil && parent.State != ipc.StateActive {
		return nil, reqErr(ipc.CodeBadRequest, "the enclosing group %s is %s; its processes are being killed", parent.ID, parent.State)
	}
	return parent, nil
}

// collect lists the processes a new group takes: pid and its descendants
// that share its cgroup origin. A descendant in another cgroup was put
// there on purpose (by a container runtime, systemd, or another group) and
// stays; if it is a top-level group of the same owner, the new group
// adopts it (killing the new group kills it too). Every process taken must
// pass the policy: the agent never moves what the caller could not kill.
func (a *Agent) collect(caller policy.Caller, host policy.Host, pid int, origin, verb string) (pids []int, adopt []*group, err error) {
	pids = []int{pid}
	seen := map[int]bool{pid: true}
	queue := children(pid)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d] {
			continue
		}
		seen[d] = true
		path, err := a.placeOf(d)
		if err != nil {
			continue // gone
		}
		if path != origin {
			a.mu.Lock()
			if og := a.byPath[path]; og != nil && og.parentGroup == nil && og.State == ipc.StateActive && policy.MaySee(caller, og.OwnerUID) {
				adopt = append(adopt, og)
			}
			a.mu.Unlock()
			continue
		}
		p, err := proctree.Open(d)
		if err != nil {
			continue
		}
		f, err := processFacts(p)
		p.Close()
		if err != nil {
			continue
		}
		if err := policy.MayAct(caller, verb, f, host); err != nil {
			var den *policy.Denied
			if errors.As(err, &den) {
				return nil, nil, &policy.Denied{Reason: fmt.Sprintf("pid %d descends from pid %d, and: %s", d, pid, den.Reason)}
			}
			return nil, nil, err
		}
		pids = append(pids, d)
		queue = append(queue, children(d)...)
	}
	return pids, adopt, nil
}

// catchEscapees attaches children that members forked before they were
// moved (those children were born in the old cgroup), until a pass finds
// none, and returns the group's members. Children forked after the move
// are born inside the group: this is what makes the set complete.
func (a *Agent) catchEscapees(ctx context.Context, cg cgroup.Group, origin string) ([]int, error) {
	for range maxEscapePasses {
		members, err := cg.Members(ctx)
		if err != nil {
			return nil, err
		}
		found := 0
		for _, m := range members {
			for _, ch := range children(m) {
				if path, err := a.placeOf(ch); err == nil && path == origin {
					if cg.Attach(ctx, ch) == nil {
						found++
					}
				}
			}
		}
		if found == 0 {
			return members, nil
		}
	}
	return cg.Members(ctx)
}

// insert makes g known: registered, nested, linked to its connection for
// on=disconnect, and watched for on=exit. It returns the write of g's
// record, to wait for before answering.
func (a *Agent) insert(c *conn, g *group, parent *group, adopt []*group) *pendingWrite {
	a.mu.Lock()
	if parent != nil {
		g.parentGroup, g.Parent = parent, parent.ID
		parent.children[g.ID] = g
	}
	a.transitionLocked(g, ipc.StateActive, ipc.Event{Event: ipc.EventRegistered})
	for _, og := range adopt {
		if og.parentGroup == nil && og.State == ipc.StateActive {
			og.parentGroup, og.Parent = g, g.ID
			g.children[og.ID] = og
			a.recordLocked(og)
		}
	}
	if g.On == ipc.OnDisconnect {
		g.conn = c
		c.onDisconnect[g.ID] = g
	}
	if parent != nil && parent.State != ipc.StateActive {
		// The enclosing group started dying while this one was created.
		a.startKillLocked(g, reasonParent, g.killOptions())
	}
	var unwatched *proctree.Process
	if g.On != ipc.OnExit && !g.handlesClosed {
		unwatched, g.spawnerProc = g.spawnerProc, nil // only its identity is needed
	}
	written := a.pendingLocked(g.ID) // queued with the adopted groups' records: one write
	a.mu.Unlock()
	if unwatched != nil {
		unwatched.Close()
	}
	if g.On == ipc.OnExit {
		a.watchSpawner(g)
	}
	return written
}

// watchSpawner asks the watcher to report g's spawner's exit, then closes
// the agent's own handle on the spawner (the watcher holds a duplicate). It
// must be called without a.mu: the watcher's callback takes it.
func (a *Agent) watchSpawner(g *group) {
	cancel, err := a.watcher.Add(g.spawnerProc, func() { a.spawnerExited(g) })
	if err != nil {
		if !watcherClosed(err) {
			a.log.Error("cannot watch a spawner: its group stays registered but will not be killed on its exit", "group", g.ID, "err", err)
		}
		return
	}
	var spawner *proctree.Process
	a.mu.Lock()
	if g.State == ipc.StateActive && !g.handlesClosed {
		g.cancelWatch, cancel = cancel, nil
		spawner, g.spawnerProc = g.spawnerProc, nil
	}
	a.mu.Unlock()
	if cancel != nil {
		cancel() // the spawner exited (or the group was released) before the watch was stored
	}
	if spawner != nil {
		spawner.Close()
	}
}

// describe is the group's description for humans (systemd's Description=).
func describe(id, name string, pid int, uid uint32) string {
	if name != "" {
		return fmt.Sprintf("orphand group %s (%s) of pid %d, uid %d", id, name, pid, uid)
	}
	return fmt.Sprintf("orphand group %s of pid %d, uid %d", id, pid, uid)
}
