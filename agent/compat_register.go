package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/orphand/orphand/agent/compat"
	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/signame"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

// compatRegister turns a REGISTER into a compat group (see compat.go), in
// the order the records were sent (compat_pairs.go).
func (a *Agent) compatRegister(ctx context.Context, r compat.Request) {
	pair := compatPair{int(r.Record.Parent), int(r.Record.Child)}
	log := a.compatLog(r)
	a.mu.Lock()
	reg, prev, why := a.compat.pairs.beginLocked(pair, r.Seq, r.Peer.UID, time.Now())
	a.mu.Unlock()
	if reg == nil {
		log.Debug("compat: REGISTER dropped", "why", why)
		return
	}
	var g *group
	err := a.compatDuplicate(prev)
	if err == nil {
		g, err = a.compatGroup(ctx, r, pair)
	}
	a.mu.Lock()
	release := a.compat.pairs.endLocked(reg, g)
	a.mu.Unlock()
	switch {
	case err != nil:
		a.compatRefused(log, r, err)
	case release:
		log.Debug("compat: unregistered while it was being registered; released", "group", g.ID)
		a.compatRelease(ctx, g, log)
	default:
		a.compat.registered.Add(1)
		log.Debug("compat: registered", "group", g.ID, "cgroup", g.Ref.Path, "unit", g.Ref.Unit)
	}
}

// compatDuplicate refuses a REGISTER of a pair whose group still holds its
// child: the same record sent twice. A previous group whose child has
// exited is another child that got the same pid; it stays registered (its
// child was never waited for: what it left behind dies with the parent).
func (a *Agent) compatDuplicate(prev *group) error {
	if prev == nil {
		return nil
	}
	a.mu.Lock()
	var child *proctree.Process
	if !prev.handlesClosed && len(prev.targetProcs) > 0 {
		child = prev.targetProcs[0]
	}
	a.mu.Unlock()
	if child != nil && !child.Exited() { // Process is safe to use even if closed meanwhile
		return reqErr(ipc.CodeBadRequest, "pair already registered (group %s)", prev.ID)
	}
	return nil
}

// compatGroup checks the record's processes and makes their group.
func (a *Agent) compatGroup(ctx context.Context, r compat.Request, pair compatPair) (*group, error) {
	caller := compatCaller(r.Peer)
	a.mu.Lock()
	release, err := a.reserveGroupLocked(caller, 1)
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer release()
	host := a.policyHost()
	parent, err := a.compatParent(r.Peer, pair.parent, host)
	if err != nil {
		return nil, err
	}
	child, err := a.compatChild(r.Peer, pair, host)
	if err != nil {
		parent.Close()
		return nil, err
	}
	return a.compatPlace(ctx, caller, host, pair, parent, child)
}

// compatParent holds the record's parent: the sender itself (by the pidfd
// taken when it connected), or one of its descendants. Any other process
// is refused (docs/compat.md, "Whose parent"). The parent may have exited
// already: its group is then killed as soon as it is made.
func (a *Agent) compatParent(p *compat.Peer, pid int, host policy.Host) (*proctree.Process, error) {
	self := p.Proc
	switch {
	case self == nil && p.Pid > 0:
		return nil, reqErr(ipc.CodeNoSuchProcess, "the sender (pid %d) exited and was reaped before the agent accepted its connection: the pids of its record can no longer be checked", p.Pid)
	case self == nil || !p.SameNS:
		return nil, reqErr(ipc.CodeUnsupported, "the sender lives in another pid namespace: the pids of its records mean nothing to the agent (run the client in the agent's pid namespace, or use the agent's own socket)")
	case pid == self.Pid():
		proc, err := self.Dup()
		if err != nil {
			return nil, noSuchProcess(pid, err)
		}
		if f, err := processFacts(proc); err == nil { // else it exited: watching it kills at once
			if err := policy.MayAct(compatCaller(p), "watch", f, host); err != nil {
				proc.Close()
				return nil, err
			}
		}
		return proc, nil
	}
	proc, err := a.compatOpen(p, pid, "watch", host, true)
	if err != nil {
		return nil, err
	}
	if !descendsFrom(pid, self.Pid()) || proc.Signal(0) != nil {
		proc.Close()
		return nil, &policy.Denied{Reason: fmt.Sprintf("parent %d is neither the sender (pid %d) nor one of its descendants", pid, self.Pid())}
	}
	return proc, nil
}

// compatChild holds the record's child, which must run and be one the
// sender could kill(2).
func (a *Agent) compatChild(p *compat.Peer, pair compatPair, host policy.Host) (*proctree.Process, error) {
	if pair.child == pair.parent {
		return nil, reqErr(ipc.CodeBadRequest, "parent and child are the same process")
	}
	return a.compatOpen(p, pair.child, "register", host, false)
}

// compatOpen opens pid for the record p sent and checks it against the
// policy with verb. The process must have started no later than the
// connection was accepted (else its pid was reused after the record was
// sent); a zombie is accepted only when zombieOK.
func (a *Agent) compatOpen(p *compat.Peer, pid int, verb string, host policy.Host, zombieOK bool) (*proctree.Process, error) {
	var proc *proctree.Process
	var err error
	if p.Proc != nil && pid == p.Proc.Pid() {
		proc, err = p.Proc.Dup()
	} else {
		proc, err = proctree.Open(pid)
	}
	if err != nil {
		return nil, noSuchProcess(pid, err)
	}
	f, err := processFacts(proc)
	switch {
	case err != nil:
	case !zombieOK && proc.Exited():
		err = os.ErrProcessDone
	case proc.Identity().StartTime > p.Accepted:
		err = fmt.Errorf("pid %d started after the record was sent (its pid was reused): %w", pid, os.ErrProcessDone)
	default:
		err = policy.MayAct(compatCaller(p), verb, f, host)
	}
	if err != nil {
		proc.Close()
		return nil, noSuchProcess(pid, err)
	}
	return proc, nil
}

// descendsFrom reports whether pid descends from ancestor now, walking up
// the parent pids (at most pidMax steps: a cycle cannot last).
func descendsFrom(pid, ancestor int) bool {
	for i := 0; pid > 1 && i < pidMax; i++ {
		st, err := proctree.ReadStat(pid)
		if err != nil {
			return false
		}
		if st.PPid == ancestor {
			return true
		}
		pid = st.PPid
	}
	return false
}

// compatPlace makes the group: the child and its descendants that share
// its cgroup move into a cgroup of their own (nested in the group that
// holds them, if any), then the group is recorded and the parent watched.
// It takes parent and child, and closes them on failure.
func (a *Agent) compatPlace(ctx context.Context, caller policy.Caller, host policy.Host, pair compatPair, parent, child *proctree.Process) (*group, error) {
	fail := func(err error) (*group, error) {
		parent.Close()
		child.Close()
		return nil, err
	}
	origin, err := a.originOf(ctx, child.Pid())
	if err != nil {
		return fail(noSuchProcess(child.Pid(), err))
	}
	a.mu.Lock()
	enclosing, err := a.parentLocked(caller, "", origin)
	a.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	pids, adopt, err := a.collect(caller, host, child.Pid(), origin, "register")
	if err != nil {
		return fail(err)
	}
	rec := a.compatRecord(caller, pair, parent, child)
	spec := cgroup.Spec{
		ID: rec.ID, Pids: pids, Stop: killOptionsOf(rec.Signal, rec.GraceMS),
		Description: fmt.Sprintf("orphand compat group %s: pid %d and its descendants, killed when pid %d exits; uid %d",
			rec.ID, child.Pid(), parent.Pid(), caller.UID),
	}
	if enclosing != nil {
		spec.Parent, rec.Parent = enclosing.cg, enclosing.ID
	}
	if err := a.persistIntent(ctx, rec); err != nil {
		return fail(err)
	}
	cg, err := a.backend.Create(ctx, spec)
	if err != nil {
		a.dropIntent(rec.ID)
		if child.Exited() || child.Signal(0) != nil {
			return fail(reqErr(ipc.CodeNoSuchProcess, "pid %d exited while its group was being created", child.Pid()))
		}
		return fail(fmt.Errorf("create the group's cgroup (backend %s): %w", a.backend.Name(), err))
	}
	if _, err := a.catchEscapees(ctx, cg, origin); err != nil {
		a.log.Warn("re-checking a new compat group for children forked during registration failed", "group", rec.ID, "err", err)
	}
	rec.Ref, rec.State = cg.Ref(), ""
	g := &group{Record: rec, cg: cg, spawnerProc: parent, targetProcs: []*proctree.Process{child}, children: map[string]*group{}}
	a.storeFDs(spawnerFDName(g.ID), parent)
	a.storeFDs(targetsFDName(g.ID), child)
	if err := a.durably(ctx, a.insert(nil, g, enclosing, adopt)); err != nil {
		return nil, a.undoRegistration(g, err) // closes parent and child
	}
	return g, nil
}

// compatRecord is a new compat group's record, in state registering.
func (a *Agent) compatRecord(caller policy.Caller, pair compatPair, parent, child *proctree.Process) Record {
	id := newGroupID()
	return Record{
		ID: id, Kind: ipc.KindWatch, Origin: ipc.OriginCompat, CompatChild: pair.child, On: ipc.OnExit,
		OwnerUID: caller.UID, Spawner: parent.Identity(), Targets: []proctree.Identity{child.Identity()},
		Signal: signame.Name(a.compat.cfg.Signal), GraceMS: a.cfg.DefaultGrace.Milliseconds(),
		Backend: a.backend.Name(), Ref: cgroup.Ref{ID: id}, Created: time.Now(), State: stateRegistering,
	}
}

// compatUnregister releases the group of the record's pair, or makes sure
// a REGISTER of it still to come is dropped (compat_pairs.go).
func (a *Agent) compatUnregister(ctx context.Context, r compat.Request) {
	pair := compatPair{int(r.Record.Parent), int(r.Record.Child)}
	log := a.compatLog(r)
	a.mu.Lock()
	g, err := a.compat.pairs.unregisterLocked(pair, r.Seq, compatCaller(r.Peer), time.Now())
	a.mu.Unlock()
	switch {
	case err != nil:
		a.compatRefused(log, r, err)
	case g != nil:
		a.compatRelease(ctx, g, log)
		log.Debug("compat: unregistered", "group", g.ID)
	}
}

// compatRelease releases g as the release op does: it stops being watched,
// its processes are left alone, and its cgroup is removed once empty.
func (a *Agent) compatRelease(ctx context.Context, g *group, log *slog.Logger) {
	a.mu.Lock()
	if g.State != ipc.StateActive {
		a.mu.Unlock()
		return // killed meanwhile: its parent exited first
	}
	a.transitionLocked(g, ipc.StateReleased, ipc.Event{Event: ipc.EventReleased})
	a.lingerLocked(g)
	w := a.pendingLocked(g.ID)
	a.mu.Unlock()
	a.unstoreGroupFDs(g)
	a.closeHandles(g)
	if err := a.durably(ctx, w); err != nil {
		log.Warn("compat: group released, but its record could not be written yet (the agent retries)", "group", g.ID, "err", err)
	}
}
