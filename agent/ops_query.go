package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/version"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

func (a *Agent) opHello(_ context.Context, _ *conn, _ ipc.Request, resp *ipc.Response) error {
	resp.Version = ipc.Version
	resp.Agent = version.String()
	resp.Backend = a.backend.Name()
	resp.Features = a.features
	resp.Mode = a.mode()
	if t, ok := a.backend.(cgroup.Tracker); ok {
		resp.Limitations = t.Limitations()
	}
	return nil
}

// opList lists the groups the caller may see, oldest first, ended ones
// included while they are retained.
func (a *Agent) opList(ctx context.Context, c *conn, _ ipc.Request, resp *ipc.Response) error {
	a.mu.Lock()
	var gs []*group
	for _, g := range a.groups {
		if policy.MaySee(c.peer.caller, g.OwnerUID) {
			gs = append(gs, g)
		}
	}
	a.mu.Unlock()
	slices.SortFunc(gs, func(x, y *group) int { return x.Created.Compare(y.Created) })
	resp.Groups = make([]ipc.Group, 0, len(gs))
	for _, g := range gs {
		members := a.members(ctx, g)
		u := a.usageOf(g)
		a.mu.Lock()
		w := g.wireLocked(len(members))
		a.mu.Unlock()
		w.Usage = u
		resp.Groups = append(resp.Groups, w)
	}
	return nil
}

func (a *Agent) opShow(ctx context.Context, c *conn, req ipc.Request, resp *ipc.Response) error {
	a.mu.Lock()
	g, err := a.lookupLocked(c.peer.caller, "show", req.Group)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	members := a.members(ctx, g)
	u := a.usageOf(g)
	a.mu.Lock()
	w := g.wireLocked(len(members))
	a.mu.Unlock()
	w.Usage = u
	resp.Group = &w
	resp.Members = members
	return nil
}

// members lists g's live members: the pids in its cgroup (nested groups
// included), or a watch group's targets that have not exited.
func (a *Agent) members(ctx context.Context, g *group) []int {
	a.mu.Lock()
	if g.hasEnded() || g.handlesClosed {
		a.mu.Unlock()
		return []int{}
	}
	targets := slices.Clone(g.targetProcs)
	a.mu.Unlock()
	if g.cg != nil {
		pids, err := g.cg.Members(ctx)
		if err != nil {
			if !isGone(err) {
				a.log.Warn("cannot list a group's members", "group", g.ID, "err", err)
			}
			return []int{}
		}
		slices.Sort(pids)
		return pids
	}
	pids := []int{}
	for _, t := range targets {
		if !t.Exited() {
			pids = append(pids, t.Pid())
		}
	}
	return pids
}

func (a *Agent) opStatus(_ context.Context, c *conn, _ ipc.Request, resp *ipc.Response) error {
	st := &ipc.Status{
		Version:  version.String(),
		Pid:      a.host.pid,
		Backend:  a.backend.Name(),
		Mode:     a.mode(),
		Features: a.features,
		Groups: map[string]int{
			ipc.StateActive: 0, ipc.StateKilling: 0, ipc.StateDead: 0, ipc.StateReleased: 0, ipc.GroupsStuck: 0,
		},
		Uptime:  time.Since(a.started).Seconds(),
		Started: a.started,
	}
	if b, err := json.Marshal(a.backend.Features()); err == nil {
		_ = json.Unmarshal(b, &st.Cgroup)
	}
	if t, ok := a.backend.(cgroup.Tracker); ok && st.Cgroup != nil {
		st.Cgroup["tracking"], st.Cgroup["limitations"] = t.Tracking(), t.Limitations()
	}
	a.mu.Lock()
	for _, g := range a.groups {
		if policy.MaySee(c.peer.caller, g.OwnerUID) {
			st.Groups[g.State]++
			if !g.stuckSince.IsZero() {
				st.Groups[ipc.GroupsStuck]++
			}
		}
	}
	st.Connections = a.openConnsLocked()
	st.Subscribers = len(a.subs)
	if a.cfg.User {
		uid := a.host.uid
		st.UID = &uid
	}
	// They have no owner: only root sees them, or a per-user agent's user,
	// the only one it has.
	if c.peer.caller.UID == 0 || a.cfg.User {
		st.Unrecorded = a.unrecordedLocked()
		slices.Sort(st.Unrecorded)
		st.Compat = a.compatStatusLocked()
	}
	a.mu.Unlock()
	if c.peer.caller.UID == 0 && a.metrics != nil { // they count every user's groups and requests
		m, err := a.metrics.snapshot()
		if err != nil {
			return fmt.Errorf("read the agent's metrics: %w", err)
		}
		st.Metrics = m
	}
	resp.Status = st
	return nil
}

// mode is what hello and status say the agent is: ipc.ModeUser for a
// per-user agent, else ipc.ModeSystem.
func (a *Agent) mode() string {
	if a.cfg.User {
		return ipc.ModeUser
	}
	return ipc.ModeSystem
}
