package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// watchGroup makes a watch group with orphanctl and returns its id.
func watchGroup(t *testing.T, a *agent, watched int, targets ...int) string {
	t.Helper()
	list := make([]string, len(targets))
	for i, p := range targets {
		list[i] = strconv.Itoa(p)
	}
	r := a.ctl(t, "watch", "--pid", strconv.Itoa(watched), "--kill", strings.Join(list, ","), "--name", "w")
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || !groupID.MatchString(id) {
		t.Fatalf("orphanctl watch: %v", r)
	}
	return id
}

// testWatch: the old orphand's model — when the watched process exits, the
// listed ones are killed.
func testWatch(t *testing.T, a *agent) {
	events := a.follow(t)
	w, t1, t2, bystander := sleeper(t), sleeper(t), sleeper(t), sleeper(t)
	id := watchGroup(t, a, w.Process.Pid, t1.Process.Pid, t2.Process.Pid)
	g, members := a.show(t, id)
	if g.Kind != ipc.KindWatch || !containsAll(members, t1.Process.Pid, t2.Process.Pid) {
		t.Fatalf("watch group %+v with members %v", g, members)
	}
	held := hold(t, t1.Process.Pid, t2.Process.Pid)
	watchBystander := hold(t, bystander.Process.Pid)
	killAndReap(t, w)
	ev := events.wait(t, id, ipc.EventKilled)
	waitGone(t, "watch target", held)
	if ev.Killed == nil || *ev.Killed != 2 {
		t.Errorf("killed event %+v, want 2 killed", ev)
	}
	if !stillRuns(watchBystander[0]) {
		t.Error("a process outside the watch group died")
	}
}

// testWatchPidReuse: a target that exits first and whose pid is then taken
// by a newcomer — the newcomer is untouched when the watched process exits.
func testWatchPidReuse(t *testing.T, a *agent) {
	events := a.follow(t)
	w, t1, t2 := sleeper(t), sleeper(t), sleeper(t)
	reused := t1.Process.Pid
	id := watchGroup(t, a, w.Process.Pid, reused, t2.Process.Pid)
	killAndReap(t, t1) // the target dies and is reaped: its pid is free
	newcomer := reusePid(t, reused)
	held := hold(t, t2.Process.Pid)

	killAndReap(t, w)
	ev := events.wait(t, id, ipc.EventKilled)
	waitGone(t, "live watch target", held)
	if ev.Killed == nil || *ev.Killed != 1 {
		t.Errorf("killed event %+v, want 1 (the target that was still alive)", ev)
	}
	// The kill is over; give a stray signal the time to land anyway.
	time.Sleep(100 * time.Millisecond)
	if !stillRuns(newcomer) {
		t.Fatalf("the newcomer with the reused pid %d was killed", reused)
	}
	g, _, err := a.client(t).Show(context.Background(), id)
	if err != nil || g.State != ipc.StateDead {
		t.Errorf("group after the kill: %+v, %v", g, err)
	}
}
