package agent

import (
	"errors"
	"time"

	"github.com/orphand/orphand/cgroup"
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
// final figures once it is dead, and otherwise a reason why there are
// none. It reads files: call it without Agent.mu.
func (a *Agent) usageOf(g *group) *ipc.Usage {
	a.mu.Lock()
	state, final := g.State, g.Usage
	a.mu.Unlock()
	switch {
	case final != nil:
		return final
	case state == ipc.StateReleased:
		return noUsage("a released group is no longer followed by the agent")
	case state == ipc.StateDead:
		return noUsage("the group's figures were not read before its cgroup was removed")
	}
	return a.readUsage(g)
}

// readUsage reads g's figures from its cgroup now.
func (a *Agent) readUsage(g *group) *ipc.Usage {
	a.mu.Lock()
	path, hasCgroup := g.Ref.Path, g.cg != nil
	a.mu.Unlock()
	switch {
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

// readFinalUsage keeps g's figures as its final ones, read once it is
// empty and before its cgroup is removed: the dead group shows them, and
// its killed event carries them. For a group whose cgroup may go away by
// itself when empty (cgroup.Collected: a systemd scope), the figures read
// just before SIGKILL (readUsageBeforeKill) stand in when the cgroup is
// gone by then.
func (a *Agent) readFinalUsage(g *group) {
	u := a.readUsage(g)
	a.mu.Lock()
	defer a.mu.Unlock()
	if u.Unavailable["cgroup"] != "" && g.usageBeforeKill != nil {
		u = g.usageBeforeKill
	}
	u.Final = true
	g.Usage = u
}

// readUsageBeforeKill reads the figures of a group whose cgroup may vanish
// the moment it is empty, in case it does.
func (a *Agent) readUsageBeforeKill(g *group) {
	if c, ok := g.cg.(cgroup.Collected); !ok || !c.CollectedWhenEmpty() {
		return
	}
	u := a.readUsage(g)
	a.mu.Lock()
	g.usageBeforeKill = u
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
