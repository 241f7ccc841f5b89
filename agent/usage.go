package agent

import (
	"errors"
	"time"

	"github.com/orphand/orphand/cgroup/usage"
	"github.com/orphand/orphand/ipc"
)

// newUsageReader returns what reads groups' usage from their cgroups, or
// nil when the backend puts groups in no cgroup v2 (the proc backend).
func (a *Agent) newUsageReader() *usage.Reader {
	if f := a.backend.Features(); f.Mount != "" && f.Backend != "proc" {
		return usage.NewReader(f.Mount)
	}
	return nil
}

// usageOf is what g used: read now from its cgroup while it lives, the
// final figures read before its cgroup was removed once it is dead, and
// otherwise a reason why there are none. It reads files: call it without
// Agent.mu.
func (a *Agent) usageOf(g *group) *ipc.Usage {
	a.mu.Lock()
	state, final, path, hasCgroup := g.State, g.Usage, g.Ref.Path, g.cg != nil
	a.mu.Unlock()
	switch {
	case final != nil:
		return final
	case state == ipc.StateReleased:
		return noUsage("a released group is no longer followed by the agent")
	case state == ipc.StateDead:
		return noUsage("the group's figures were not read before its cgroup was removed")
	case !hasCgroup:
		return noUsage("a watch group has no cgroup: the agent holds its targets, not what they use")
	case a.usage == nil || path == "":
		return noUsage("the " + a.backend.Name() + " backend puts groups in no cgroup v2")
	}
	u, err := a.usage.Read(path)
	switch {
	case errors.Is(err, usage.ErrNotFound):
		return noUsage("the group's cgroup is gone")
	case err != nil:
		a.log.Warn("cannot read a group's usage", "group", g.ID, "err", err)
		return noUsage(err.Error())
	}
	return wireUsage(u)
}

// readFinalUsage keeps g's figures, read once it is empty and before its
// cgroup goes: the dead group shows them, and its killed event carries them.
func (a *Agent) readFinalUsage(g *group) {
	u := a.usageOf(g)
	u.Final = true
	a.mu.Lock()
	g.Usage = u
	a.mu.Unlock()
}

func noUsage(why string) *ipc.Usage {
	return &ipc.Usage{Time: time.Now(), Unavailable: map[string]string{"cgroup": why}}
}

// wireUsage is u for the protocol.
func wireUsage(u usage.Usage) *ipc.Usage {
	w := &ipc.Usage{Time: time.Now(), Unavailable: u.Unavailable}
	if u.CPU != nil {
		w.CPU = &ipc.CPUUsage{UsageUsec: u.CPU.UsageUsec, UserUsec: u.CPU.UserUsec, SystemUsec: u.CPU.SystemUsec}
	}
	if u.Memory != nil {
		w.Memory = &ipc.MemoryUsage{CurrentBytes: u.Memory.Current, PeakBytes: u.Memory.Peak}
	}
	if u.Pids != nil {
		w.Pids = &ipc.PidsUsage{Current: u.Pids.Current, Peak: u.Pids.Peak}
	}
	if u.IO != nil {
		w.IO = &ipc.IOUsage{ReadBytes: u.IO.ReadBytes, WriteBytes: u.IO.WriteBytes}
	}
	return w
}
