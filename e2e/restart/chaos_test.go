package restart

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// cyclesEnv overrides the number of cycles (e.g. 1000 for a long soak).
const cyclesEnv = "ORPHAND_RESTART_CYCLES"

// TestChaos: 100 cycles on the host, cgroupfs backend, no fd store (so
// every process is found again by pid, start time and pidfs inode).
func TestChaos(t *testing.T) {
	h := newHostAgent(t)
	newChaos(t, h, false).run(cycles(100))
}

func cycles(def int) int {
	if n, err := strconv.Atoi(os.Getenv(cyclesEnv)); err == nil && n > 0 {
		return n
	}
	return def
}

// The kinds of group the test registers.
const (
	kindSubtree    = "subtree"
	kindWatch      = "watch"
	kindNested     = "nested"
	kindDisconnect = "disconnect"
)

// group is one group the test registered, or tried to, and follows.
type group struct {
	name    string
	id      string // "" while unknown: a registration that got no answer
	cgroup  string // subtree: its cgroup, relative to the mount
	kind    string
	born    int
	spawner *proctree.Process
	tree    *tree    // subtree: the spawner's tree
	child   *child   // watch: the watched process, the test's child
	targets []*child // watch
	procs   []*proctree.Process
	parent  *group
	conn    *ipc.Client // disconnect: the registering connection

	pending string // no answer: the crash point it was cut at, or "random"
	dying   bool   // it must end dead, its processes gone
	maybe   bool   // a kill request got no answer: dying, or still active
}

// chaos is the test's state across cycles.
type chaos struct {
	t         *testing.T
	a         agentCtl
	systemd   bool
	rng       *rand.Rand
	cycle     int
	groups    []*group
	survivors []*proctree.Process // must stay alive to the end
	counts    map[string]int
}

func newChaos(t *testing.T, a agentCtl, systemd bool) *chaos {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("ORPHAND_RESTART_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (ORPHAND_RESTART_SEED replays it)", seed)
	return &chaos{t: t, a: a, systemd: systemd, rng: rand.New(rand.NewPCG(seed, seed)), counts: map[string]int{}}
}

// modes are the ways a cycle takes the agent down, in turn.
var modes = []string{
	"register.intent", "register.created", "register.persisted", "watch.persisted",
	"kill.persisted", "kill.emptied", "grace", "graceful", "random", "random",
}

func (c *chaos) run(n int) {
	t := c.t
	start := time.Now()
	c.a.Start(t)
	for c.cycle = 0; c.cycle < n; c.cycle++ {
		c.registerSome()
		mode := modes[c.cycle%len(modes)]
		c.counts["mode "+mode]++
		c.down(mode)
		c.verify(mode)
		c.retire()
		if t.Failed() {
			t.Fatalf("cycle %d (%s) failed", c.cycle, mode)
		}
	}
	for _, g := range c.groups {
		c.killSpawner(g)
	}
	c.verify("end")
	c.a.Stop(t)
	t.Logf("%d cycles in %v: %v", n, time.Since(start).Round(time.Millisecond), c.counts)
}

// registerSome registers a subtree group and, in turn, a watch group, a
// nested group or an on=disconnect group, and waits for their answers.
func (c *chaos) registerSome() {
	c.groups = append(c.groups, c.newSubtree(false))
	switch c.cycle % 3 {
	case 0:
		c.groups = append(c.groups, c.newWatch(false))
	case 1:
		if g := c.newNested(); g != nil {
			c.groups = append(c.groups, g)
		}
	case 2:
		c.groups = append(c.groups, c.newDisconnect())
	}
}

func (c *chaos) name(kind string) string {
	c.counts["registered "+kind]++
	return fmt.Sprintf("c%d-%s-%d", c.cycle, kind, c.counts["registered "+kind])
}

// newSubtree registers a tree's spawner; with cut set, the agent is
// expected to die before it answers.
func (c *chaos) newSubtree(cut bool) *group {
	t := c.t
	tr := startTree(t)
	g := &group{name: c.name(kindSubtree), kind: kindSubtree, born: c.cycle, spawner: tr.p, tree: tr}
	cl := client(t, c.a)
	defer cl.Close()
	ctx, cancel := ctxTimeout()
	defer cancel()
	got, err := cl.Register(ctx, ipc.RegisterOptions{Pid: tr.p.Pid(), Name: g.name})
	if cut {
		if err == nil {
			t.Fatalf("registration %s was answered; the agent should have died first", g.name)
		}
		g.pending = "cut"
		return g
	}
	if err != nil {
		t.Fatalf("register %s: %v", g.name, err)
	}
	g.id, g.cgroup = got.ID, got.Cgroup
	tr.release(t)
	g.procs = members(t, c.a, g.id)
	if len(g.procs) < 3 {
		t.Fatalf("group %s has %d members, want the spawner, its child and its daemon", g.name, len(g.procs))
	}
	return g
}

func (c *chaos) newWatch(cut bool) *group {
	t := c.t
	watched, _, _ := startChild(t, false, "sleep", "1000")
	g := &group{name: c.name(kindWatch), kind: kindWatch, born: c.cycle, spawner: watched.p, child: watched}
	var pids []int
	for range 2 {
		tg, _, _ := startChild(t, false, "sleep", "1000")
		g.targets = append(g.targets, tg)
		g.procs = append(g.procs, tg.p)
		pids = append(pids, tg.p.Pid())
	}
	cl := client(t, c.a)
	defer cl.Close()
	ctx, cancel := ctxTimeout()
	defer cancel()
	got, err := cl.Watch(ctx, ipc.WatchOptions{Pid: watched.p.Pid(), Kill: pids, Name: g.name})
	switch {
	case cut && err == nil:
		t.Fatalf("watch %s was answered; the agent should have died first", g.name)
	case cut:
		g.pending = "cut"
	case err != nil:
		t.Fatalf("watch %s: %v", g.name, err)
	default:
		g.id = got.ID
	}
	return g
}

// newNested registers the child of a live subtree group's spawner: the new
// group nests in that group.
func (c *chaos) newNested() *group {
	t := c.t
	for _, p := range c.groups {
		if p.kind != kindSubtree || p.id == "" || p.dying || p.maybe || !p.tree.released {
			continue
		}
		for i, m := range p.procs {
			st, err := proctree.ReadStat(m.Pid())
			if err != nil || st.PPid != p.spawner.Pid() || st.Comm != "sleep" {
				continue
			}
			g := &group{name: c.name(kindNested), kind: kindNested, born: c.cycle, spawner: m, procs: []*proctree.Process{m}, parent: p}
			cl := client(t, c.a)
			defer cl.Close()
			ctx, cancel := ctxTimeout()
			defer cancel()
			got, err := cl.Register(ctx, ipc.RegisterOptions{Pid: m.Pid(), Name: g.name})
			if err != nil {
				t.Fatalf("register nested %s: %v", g.name, err)
			}
			if got.Parent != p.id {
				t.Fatalf("nested group %s has parent %q, want %s", g.name, got.Parent, p.id)
			}
			g.id = got.ID
			p.procs = append(p.procs[:i:i], p.procs[i+1:]...) // it is the nested group's now
			return g
		}
	}
	return nil
}

// newDisconnect registers a sleep with on=disconnect on a connection that
// stays open: the agent's next death ends it, so the group must die.
func (c *chaos) newDisconnect() *group {
	t := c.t
	sp, _, _ := startChild(t, false, "sleep", "1000")
	g := &group{name: c.name(kindDisconnect), kind: kindDisconnect, born: c.cycle, spawner: sp.p, child: sp, procs: []*proctree.Process{sp.p}}
	g.conn = client(t, c.a)
	ctx, cancel := ctxTimeout()
	defer cancel()
	got, err := g.conn.Register(ctx, ipc.RegisterOptions{Pid: sp.p.Pid(), Name: g.name, On: ipc.OnDisconnect})
	if err != nil {
		t.Fatalf("register %s: %v", g.name, err)
	}
	g.id = got.ID
	return g
}

// killSpawner fires g's trigger — kills its spawner (reaping it when it
// is the test's child), or closes its connection for on=disconnect — and
// marks g, and the groups nested in it, dying.
func (c *chaos) killSpawner(g *group) {
	if g.id == "" || g.dying {
		return
	}
	switch {
	case g.kind == kindDisconnect: // its trigger is its connection
		g.conn.Close()
		g.conn = nil
	case g.tree != nil:
		g.tree.killReap(c.t)
	case g.child != nil:
		g.child.killReap(c.t)
	default:
		_ = g.spawner.Signal(syscall.SIGKILL)
	}
	c.markDying(g)
}

func (c *chaos) markDying(g *group) {
	g.dying, g.maybe = true, false
	for _, n := range c.groups {
		if n.parent == g && !n.dying {
			c.markDying(n)
		}
	}
}

// victim picks a live group with an answer, of one of kinds.
func (c *chaos) victim(kinds ...string) *group {
	var cands []*group
	for _, g := range c.groups {
		if g.id != "" && !g.dying && !g.maybe && slices.Contains(kinds, g.kind) {
			cands = append(cands, g)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[c.rng.IntN(len(cands))]
}

// retire kills, with the agent up, the spawners of groups three cycles
// old: a group taken over after restarts is still killed by its trigger.
func (c *chaos) retire() {
	for _, g := range c.groups {
		if g.born <= c.cycle-3 && g.id != "" && !g.dying && !g.maybe && g.kind != kindDisconnect {
			c.killSpawner(g)
			c.counts["killed by trigger after restarts"]++
		}
	}
}
