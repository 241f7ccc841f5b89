package restart

import (
	"slices"
	"sync"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// down takes the agent down the way mode says, does what happens while it
// is down, and starts the next agent.
func (c *chaos) down(mode string) {
	t := c.t
	switch mode {
	case "graceful":
		c.a.Restart(t)
		return
	case "register.intent", "register.created", "register.persisted":
		c.a.Arm(t, mode)
		g := c.newSubtree(true)
		g.pending = mode
		c.groups = append(c.groups, g)
		c.a.WaitDown(t)
	case "watch.persisted":
		c.a.Arm(t, mode)
		g := c.newWatch(true)
		g.pending = mode
		c.groups = append(c.groups, g)
		c.a.WaitDown(t)
	case "kill.persisted", "kill.emptied":
		v := c.victim(kindSubtree, kindWatch)
		if v == nil {
			c.a.Crash(t)
			break
		}
		// The victim's own kill: a trigger's kill running meanwhile
		// reaches kill.emptied too, before the victim's record says
		// killing.
		c.a.Arm(t, mode+" "+v.id)
		cl := client(t, c.a)
		ctx, cancel := ctxTimeout()
		_, err := cl.Kill(ctx, v.id, nil)
		cancel()
		cl.Close()
		if err == nil {
			t.Fatalf("kill of %s (%s) was answered; the agent should have died first", v.name, mode)
		}
		c.markDying(v) // its killing state was on disk
		c.a.WaitDown(t)
	case "grace":
		c.crashInGrace()
	case "random":
		c.crashAtRandom()
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	c.whileDown()
	c.a.Start(t)
}

// crashInGrace asks for a graced kill of a group whose spawner ignores
// SIGTERM, and SIGKILLs the agent in the middle of the grace, once the
// polite signal has done part of the work: the next agent must finish the
// kill.
func (c *chaos) crashInGrace() {
	t := c.t
	v := c.victim(kindSubtree)
	if v == nil {
		c.a.Crash(t)
		return
	}
	answered := make(chan error, 1)
	go func() {
		cl := client(t, c.a)
		defer cl.Close()
		ctx, cancel := ctxTimeout()
		defer cancel()
		_, err := cl.Kill(ctx, v.id, durationPtr(2*time.Second))
		answered <- err
	}()
	// The kill is under way once the polite signal has killed a member
	// (the spawner ignores it; its children do not).
	deadline := time.Now().Add(goneTimeout)
	for !slices.ContainsFunc(v.procs, func(p *proctree.Process) bool { return p != v.spawner && p.Exited() }) {
		if time.Now().After(deadline) {
			t.Fatalf("the graced kill of %s sent no polite signal", v.name)
		}
		sleepBriefly()
	}
	c.a.Crash(t)
	<-answered // an error, or (on a slow machine) the kill finished first
	c.markDying(v)
}

// crashAtRandom SIGKILLs the agent at a random moment while registrations
// and a kill are in flight; what got no answer may or may not have
// happened, and verify checks that either way the outcome is whole.
func (c *chaos) crashAtRandom() {
	t := c.t
	var wg sync.WaitGroup
	var mu sync.Mutex
	regs := make([]*group, 2)
	for i := range regs {
		tr := startTree(t)
		g := &group{name: c.name(kindSubtree), kind: kindSubtree, born: c.cycle, spawner: tr.p, tree: tr}
		regs[i] = g
		cl := client(t, c.a) // connected before the crash: the request is in flight
		wg.Go(func() {
			defer cl.Close()
			ctx, cancel := ctxTimeout()
			defer cancel()
			got, err := cl.Register(ctx, ipc.RegisterOptions{Pid: tr.p.Pid(), Name: g.name})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				g.pending = "random"
				return
			}
			g.id, g.cgroup = got.ID, got.Cgroup
		})
	}
	v := c.victim(kindSubtree, kindWatch, kindNested)
	if v != nil {
		v.maybe = true
		cl := client(t, c.a)
		wg.Go(func() {
			defer cl.Close()
			ctx, cancel := ctxTimeout()
			defer cancel()
			if _, err := cl.Kill(ctx, v.id, nil); err == nil {
				mu.Lock()
				c.markDying(v)
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Duration(c.rng.IntN(40)) * time.Millisecond)
	c.a.Crash(t)
	wg.Wait()
	for _, g := range regs {
		if g.id != "" {
			g.tree.release(t)
			g.procs = cgroupProcs(t, c.a.GroupDir(g.cgroup)) // the agent is down: read the cgroup
			if len(g.procs) < 3 {
				t.Fatalf("registration %s was answered, but its cgroup holds %d processes", g.name, len(g.procs))
			}
		}
		c.groups = append(c.groups, g)
	}
	if v != nil && v.dying && v.maybe {
		v.maybe = false
	}
}

// whileDown kills, in turn, a spawner (sometimes giving its pid to a
// newcomer) and a watch target while no agent runs.
func (c *chaos) whileDown() {
	t := c.t
	if v := c.victim(kindSubtree, kindWatch, kindNested); v != nil && c.cycle%2 == 0 {
		pid := v.spawner.Pid()
		c.killSpawner(v)
		c.counts["spawner killed while down"]++
		if v.kind != kindNested && c.cycle%4 == 0 {
			if p := reusePid(t, pid); p != nil {
				c.survivors = append(c.survivors, p)
				c.counts["spawner pid reused while down"]++
			}
		}
	}
	if v := c.victim(kindWatch); v != nil && c.cycle%3 == 1 && len(v.targets) > 1 {
		tg := v.targets[0]
		v.targets = v.targets[1:]
		v.procs = slices.DeleteFunc(v.procs, func(p *proctree.Process) bool { return p == tg.p })
		pid := tg.p.Pid()
		tg.killReap(t)
		c.counts["watch target killed while down"]++
		if p := reusePid(t, pid); p != nil {
			c.survivors = append(c.survivors, p)
			c.counts["target pid reused while down"]++
		}
	}
}
