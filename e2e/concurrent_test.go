package e2e

import (
	"context"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// concurrentClients is how many clients register and kill at once.
const concurrentClients = 500

// testConcurrent: 500 clients, each on its own connection, register a
// process and kill its group, all at once; every process dies, every group
// ends dead and its cgroup goes.
func testConcurrent(t *testing.T, a *agent) {
	procs := make([]*exec.Cmd, concurrentClients)
	held := make([]*proctree.Process, concurrentClients)
	for i := range procs {
		procs[i] = sleeper(t)
		held[i] = hold(t, procs[i].Process.Pid)[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := make(chan struct{})
	groups := make([]*ipc.Group, concurrentClients)
	errs := make(chan error, concurrentClients)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			<-start
			c, err := ipc.Dial(ctx, a.socket)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			g, err := c.Register(ctx, ipc.RegisterOptions{Pid: procs[i].Process.Pid, Name: "concurrent"})
			if err != nil {
				errs <- err
				return
			}
			groups[i] = g
			n, err := c.Kill(ctx, g.ID, nil)
			if err != nil {
				errs <- err
				return
			}
			if n != 1 {
				t.Errorf("group %s: killed %d, want 1", g.ID, n)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client: %v", err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d clients registered and killed in %v", concurrentClients, time.Since(began).Round(time.Millisecond))
	waitGone(t, "registered process", held)
	list, err := a.client(t).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dead := 0
	for _, g := range list {
		if g.Name == "concurrent" && g.State == ipc.StateDead {
			dead++
		}
	}
	if dead != concurrentClients {
		t.Errorf("%d groups dead, want %d", dead, concurrentClients)
	}
	for _, g := range groups {
		if g.Cgroup != "" {
			waitNoDir(t, a.cgroupDir(g))
		}
	}
}
