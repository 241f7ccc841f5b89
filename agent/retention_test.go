package agent

import (
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// listIDs returns the ids list shows.
func listIDs(c *client) map[string]string {
	ids := map[string]string{}
	for _, g := range c.ok(ipc.Request{Op: ipc.OpList}).Groups {
		ids[g.ID] = g.State
	}
	return ids
}

// waitGone waits until list no longer shows id.
func waitGone(t *testing.T, c *client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := listIDs(c)[id]; !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ended group %s still listed", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ended groups stay visible no longer than DeadRetention, and no more than
// DeadMax of them; active groups are never forgotten.
func TestDeadGroupRetention(t *testing.T) {
	cfg := testConfig()
	cfg.DeadMax = 2
	cfg.DeadRetention = time.Hour
	ta := startAgent(t, cfg, newFakeBackend(t))
	c := dial(t, ta.sock)
	var ids []string
	for range 3 {
		p := spawn(t, "sleep", "300")
		g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Process.Pid}).Group
		c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
		ids = append(ids, g.ID)
	}
	active := spawn(t, "sleep", "300")
	ga := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: active.Process.Pid}).Group
	waitGone(t, c, ids[0]) // the oldest of three goes: DeadMax is 2
	l := listIDs(c)
	if l[ids[1]] != ipc.StateDead || l[ids[2]] != ipc.StateDead || l[ga.ID] != ipc.StateActive {
		t.Fatalf("list %v", l)
	}
	c.fails(ipc.Request{Op: ipc.OpShow, Group: ids[0]}, ipc.CodeNotFound)
}

func TestDeadGroupExpiry(t *testing.T) {
	cfg := testConfig()
	cfg.DeadRetention = 50 * time.Millisecond
	ta := startAgent(t, cfg, newFakeBackend(t))
	c := dial(t, ta.sock)
	p := spawn(t, "sleep", "300")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Process.Pid}).Group
	q := spawn(t, "sleep", "300")
	gr := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: q.Process.Pid}).Group
	c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	c.ok(ipc.Request{Op: ipc.OpRelease, Group: gr.ID})
	waitGone(t, c, g.ID)
	waitGone(t, c, gr.ID)
}
