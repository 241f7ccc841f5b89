package restart

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// verify checks, after the agent came back (or at the end), that every
// group is accounted for: what must be dead is dead with every process it
// held, what must live is active with every process alive, nothing else is
// active, no group is unrecorded, and no survivor was hit.
func (c *chaos) verify(mode string) {
	t := c.t
	cl := client(t, c.a)
	ctx, cancel := ctxTimeout()
	st, err := cl.Status(ctx)
	cancel()
	cl.Close()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st.Unrecorded) > 0 {
		t.Fatalf("after %s: groups without a record: %v", mode, st.Unrecorded)
	}
	groups := list(t, c.a)
	for _, g := range c.groups {
		if g.id == "" {
			c.resolve(g, groups)
		}
	}
	c.groups = slices.DeleteFunc(c.groups, func(g *group) bool { return g.id == "" })
	for _, g := range c.groups {
		if g.kind == kindDisconnect && !g.dying && mode != "end" {
			// The agent's end ended the connection.
			g.conn.Close()
			g.conn = nil
			c.markDying(g)
		}
	}
	for _, g := range c.groups {
		if g.maybe { // a kill request that got no answer
			g.maybe = false
			if groups[g.id].State != ipc.StateActive {
				c.markDying(g)
				c.counts["unanswered kill done anyway"]++
			}
		}
	}
	known := map[string]*group{}
	for _, g := range c.groups {
		known[g.id] = g
	}
	for id, lg := range groups {
		if (lg.State == ipc.StateActive || lg.State == ipc.StateKilling) && known[id] == nil {
			t.Fatalf("after %s: group %s (%q) is %s, but the test registered no such group", mode, id, lg.Name, lg.State)
		}
	}
	for _, g := range c.groups {
		if g.dying {
			if lg := waitState(t, c.a, g.id, ipc.StateDead); lg.State != ipc.StateDead {
				t.Fatalf("after %s: group %s (%s, %s) is %s, want dead", mode, g.name, g.id, g.kind, lg.State)
			}
			waitGone(t, g.name, g.procs)
			continue
		}
		if s := groups[g.id].State; s != ipc.StateActive {
			t.Fatalf("after %s: group %s (%s) is %q, want active: its spawner lives", mode, g.name, g.id, s)
		}
		checkAlive(t, g.name, g.procs)
	}
	c.groups = slices.DeleteFunc(c.groups, func(g *group) bool { return g.dying })
	checkAlive(t, "a survivor (a newcomer on a reused pid, or a process whose registration never happened)", c.survivors)
	c.checkRestoreLog(mode)
}

// resolve settles a registration that got no answer, by its name: taken
// over (active, and followed from now on) or never done (its processes
// untouched).
func (c *chaos) resolve(g *group, groups map[string]ipc.Group) {
	t := c.t
	lg, ok := byName(groups, g.name)
	switch g.pending {
	case "register.intent":
		if ok {
			t.Fatalf("registration %s, cut before its cgroup existed, was taken over as %s", g.name, lg.ID)
		}
	case "register.created", "register.persisted", "watch.persisted":
		if !ok {
			t.Fatalf("registration %s, cut at %s, was lost", g.name, g.pending)
		}
	}
	if !ok {
		c.counts["unanswered registration not done"]++
		c.survivors = append(c.survivors, g.spawner)
		c.survivors = append(c.survivors, g.procs...)
		return
	}
	c.counts["unanswered registration taken over"]++
	if lg.State != ipc.StateActive {
		t.Fatalf("registration %s, cut at %s, is %s: its spawner lives", g.name, g.pending, lg.State)
	}
	g.id, g.cgroup, g.pending = lg.ID, lg.Cgroup, ""
	if g.tree != nil {
		g.tree.release(t)
		g.procs = members(t, c.a, g.id)
		if len(g.procs) < 3 {
			t.Fatalf("registration %s, cut at %s and taken over, holds %d processes: its spawner and children were not all moved", g.name, g.pending, len(g.procs))
		}
	}
}

// checkRestoreLog reads the new agent's account of what it took over.
func (c *chaos) checkRestoreLog(mode string) {
	t := c.t
	if mode == "end" {
		return
	}
	line := lastLine(c.a.Log(t), "took over the groups")
	if line == "" {
		t.Fatalf("after %s: the agent did not log what it took over", mode)
	}
	fromStore, byIdentity := restoreCount(line, "spawners_from_fdstore"), restoreCount(line, "spawners_by_identity")
	c.counts["spawners back from the fd store"] += fromStore
	c.counts["spawners back by identity"] += byIdentity
	if !c.systemd {
		if fromStore != 0 {
			t.Fatalf("after %s: %d spawners from an fd store the host does not have: %s", mode, fromStore, line)
		}
		return
	}
	switch mode {
	case "graceful", "kill.persisted", "kill.emptied", "grace":
		// Nothing was registered in flight: every live spawner's pidfd
		// was in the store.
		if byIdentity != 0 || fromStore == 0 {
			t.Fatalf("after %s: spawners back from the fd store %d, by identity %d; want all from the store: %s", mode, fromStore, byIdentity, line)
		}
	}
}

// cgroupProcs holds the processes in the cgroup at dir and below it.
func cgroupProcs(t *testing.T, dir string) []*proctree.Process {
	t.Helper()
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil // a cgroup removed meanwhile is no error
	})
	var ps []*proctree.Process
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			pid, err := strconv.Atoi(sc.Text())
			if err != nil {
				continue
			}
			if pr, err := proctree.Open(pid); err == nil {
				t.Cleanup(func() { killWait(pr) })
				ps = append(ps, pr)
			}
		}
	}
	return ps
}
