package agent

import (
	"fmt"
	"os"

	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

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
