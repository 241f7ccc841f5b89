package agent

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

// target opens the process a request names (pid 0: the caller itself) and
// checks that the caller may have the agent act on it with verb.
func (c *conn) target(pid int, verb string, host policy.Host) (*proctree.Process, error) {
	var (
		p   *proctree.Process
		err error
	)
	self := c.peer.proc
	switch {
	case pid < 0:
		return nil, reqErr(ipc.CodeBadRequest, "pid %d is not a process id", pid)
	case pid == 0 || self != nil && c.peer.sameNS && pid == self.Pid():
		if self == nil {
			return nil, reqErr(ipc.CodeUnsupported, "the agent cannot see your process (it lives in another pid namespace, or has exited), so it cannot %s it", verb)
		}
		p, err = self.Dup()
	case !c.peer.sameNS:
		return nil, reqErr(ipc.CodeUnsupported, "pid numbers from another pid namespace mean nothing to the agent; %s yourself by leaving out \"pid\"", verb)
	default:
		p, err = proctree.Open(pid)
	}
	if err != nil {
		return nil, noSuchProcess(pid, err)
	}
	f, err := processFacts(p)
	if err == nil && p.Exited() {
		err = os.ErrProcessDone // a zombie: nothing left to act on
	}
	if err == nil {
		err = policy.MayAct(c.peer.caller, verb, f, host)
	}
	if err != nil {
		p.Close()
		return nil, noSuchProcess(pid, err)
	}
	return p, nil
}

// noSuchProcess phrases a vanished process; other errors pass through.
func noSuchProcess(pid int, err error) error {
	if errors.Is(err, os.ErrProcessDone) || errors.Is(err, os.ErrNotExist) {
		return reqErr(ipc.CodeNoSuchProcess, "no process with pid %d (it exited?)", pid)
	}
	return err
}

// processFacts gathers what the policy needs about p, read through p's
// verified identity: the reads below describe p's process only if it was
// not reaped meanwhile (a pid is reused only after the reap), which the
// signal 0 through the pidfd checks afterwards.
func processFacts(p *proctree.Process) (policy.Process, error) {
	pid := p.Pid()
	st, err := proctree.ReadStat(pid)
	if err != nil {
		return policy.Process{}, err
	}
	status, err := proctree.ReadStatus(pid)
	if err == nil {
		err = status.Need(proctree.StatusUID)
	}
	if err != nil {
		return policy.Process{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	if err := p.Signal(0); err != nil || st.StartTime != p.Identity().StartTime {
		return policy.Process{}, fmt.Errorf("pid %d exited while being checked: %w", pid, os.ErrProcessDone)
	}
	return policy.Process{Pid: pid, RealUID: status.UID.Real, SavedUID: status.UID.Saved, KernelThread: st.IsKernelThread()}, nil
}

// policyHost gathers the agent's place in the tree now: its ancestors
// change when a parent dies and the agent is reparented.
func (a *Agent) policyHost() policy.Host {
	h := policy.Host{AgentPid: a.host.pid}
	pid := os.Getppid()
	for i := 0; pid > 0 && i < 4096; i++ {
		h.Ancestors = append(h.Ancestors, pid)
		st, err := proctree.ReadStat(pid)
		if err != nil {
			break
		}
		pid = st.PPid
	}
	return h
}

// children returns pid's direct children (of all its threads). A process
// that vanishes has none; a read that fails midway gives what it read.
func children(pid int) []int {
	c, _ := proctree.Children(pid)
	return c
}

// Where a process is: its cgroup path with a cgroup backend, else its
// place as the backend says (cgroup.Placer). Everything that nests a
// registration, or tells a member of another group from a process to
// take, works on places.

// placeOf returns where pid is now: its cgroup path, or its place.
func (a *Agent) placeOf(pid int) (string, error) {
	p, ok := a.backend.(cgroup.Placer)
	if !ok {
		return cgroup.ProcessCgroup(pid)
	}
	if _, err := proctree.ReadStat(pid); err != nil {
		return "", err
	}
	return p.PlaceOf(pid), nil
}

// originOf is placeOf for the process a request names (a spawner, an
// attach target): a process forked inside a proc group moments ago is
// seen there, not as a stranger.
func (a *Agent) originOf(ctx context.Context, pid int) (string, error) {
	if p, ok := a.backend.(cgroup.Placer); ok {
		p.Follow(ctx, pid)
	}
	return a.placeOf(pid)
}

// placeKey is g's key in byPath: its cgroup path, or its place.
func placeKey(g *group) string {
	if p, ok := g.cg.(cgroup.Placed); ok {
		return p.Place()
	}
	return g.Ref.Path
}
