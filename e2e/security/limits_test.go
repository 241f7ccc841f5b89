package security

import (
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// TestDeadlines: a silent connection is dropped at the idle limit and a
// trickling one at the line limit, each told which; connections that wait
// on purpose (a subscription, the holder of an on=disconnect group) are
// not; and others are served all the while.
func TestDeadlines(t *testing.T) {
	a := startAgent(t, `
[limits]
idle_timeout = "6s"
line_timeout = "2s"
`)
	silent := a.as(t, attacker)
	sub := a.as(t, victim)
	sub.ok(ipc.Request{Op: ipc.OpSubscribe})
	holder := a.as(t, victim)
	held := sleeper(t, victim)
	hg := holder.ok(ipc.Request{Op: ipc.OpRegister, Pid: held.Pid(), On: ipc.OnDisconnect}).Group

	trickler := a.as(t, attacker)
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() { // one byte a second, a line that never ends
		defer close(trickled)
		for _, b := range []byte(`{"op":"hello","name":"` + strings.Repeat("x", 100)) {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			if _, err := trickler.stdin.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-trickled }()

	// Meanwhile another user works normally.
	v := a.as(t, victim)
	p := sleeper(t, victim)
	g := v.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Pid()}).Group
	v.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})

	for _, c := range []struct {
		u     *user
		limit string
	}{{trickler, "line_timeout"}, {silent, "idle_timeout"}} {
		r := c.u.response()
		if r.OK || r.Error == nil || r.Error.Code != ipc.CodeLimitExceeded || r.Error.Limit != c.limit {
			t.Errorf("want limit_exceeded %s, got %+v", c.limit, r.Error)
		}
		c.u.hungUp()
	}
	// Both dropped, and v too by now (idle): the waiting ones have waited
	// longer than the idle limit.
	time.Sleep(6 * time.Second)
	w := a.as(t, victim)
	if st := w.ok(ipc.Request{Op: ipc.OpShow, Group: hg.ID}).Group.State; st != ipc.StateActive {
		t.Errorf("the on=disconnect group of an idle holder is %s", st)
	}
	holder.ok(ipc.Request{Op: ipc.OpHello})
	w.ok(ipc.Request{Op: ipc.OpKill, Group: hg.ID})
	held.waitExit(t, "its group was killed")
	for saw := ""; !strings.Contains(saw, `"killed"`) || !strings.Contains(saw, hg.ID); {
		l, err := sub.line()
		if err != nil {
			t.Fatalf("the subscription ended: %v", err)
		}
		saw = string(l)
	}
}

// TestKillFairness: one user's groups that ignore their polite signal,
// with a grace of an hour, more of them than the agent runs kills at once,
// do not hold up the kill of another user's group.
func TestKillFairness(t *testing.T) {
	a := startAgent(t, "[limits]\nparallel_kills = 4\n")
	u := a.as(t, attacker)
	watched := sleeper(t, attacker)
	hour := time.Hour.Milliseconds()
	var stubborn []*proc
	for range 8 {
		s := startAs(t, attacker, "sh", "-c", `trap "" TERM; exec sleep 1000`) // SIG_IGN survives exec
		s.waitComm(t, "sleep")                                                 // else SIGTERM may beat the trap
		stubborn = append(stubborn, s)
		u.ok(ipc.Request{Op: ipc.OpWatch, Pid: watched.Pid(), Kill: []int{s.Pid()}, GraceMS: &hour})
	}
	watched.kill() // eight kills start, each in an hour's grace

	v := a.as(t, victim)
	p := sleeper(t, victim)
	g := v.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Pid()}).Group
	if r := v.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID}); r.Killed == nil || *r.Killed != 1 {
		t.Errorf("the other user's kill: %+v", r)
	}
	p.waitExit(t, "killed by its owner")
	if st := u.ok(ipc.Request{Op: ipc.OpStatus}).Status; st.Groups[ipc.StateKilling] != 8 {
		t.Errorf("the stubborn groups are not all in their grace: %v", st.Groups)
	}
	stillAlive(t, "SIGTERM-proof processes within their grace", stubborn...)
	for _, s := range stubborn {
		s.kill() // ends each grace: the group is empty
	}
	deadline := newDeadline()
	for u.ok(ipc.Request{Op: ipc.OpStatus}).Status.Groups[ipc.StateKilling] > 0 {
		deadline.check(t, "the stubborn groups to end")
	}
}

// TestConnectCloseCycles: 10,000 connections opened and closed by a user
// (straight away, after a request, in the middle of a line) leave the
// agent's descriptors where they were and its memory near where it was,
// and a second 10,000 add nothing that the first did not. The agent is
// built without the race detector, whose shadow memory only grows.
func TestConnectCloseCycles(t *testing.T) {
	a := startBinary(t, "", binaries(t).plainOrphand)
	a.cycles(t, attacker, 1000) // warm up: buffers, goroutine stacks, the heap's working size
	base := a.settled(t, -1)
	after := make([]usage, 2)
	for i := range after {
		answered := a.cycles(t, attacker, 10000)
		after[i] = a.settled(t, base.fds)
		t.Logf("10,000 connect/close cycles (%d answered): before %v, after %v", answered, base, after[i])
	}
	for i, u := range after {
		if u.fds != base.fds {
			t.Errorf("round %d: descriptors: %d before, %d after", i+1, base.fds, u.fds)
		}
		if limit := base.rssKiB + rssSlackKiB; u.rssKiB > limit {
			t.Errorf("round %d: RSS %d KiB, more than %d KiB before + %d KiB", i+1, u.rssKiB, base.rssKiB, rssSlackKiB)
		}
	}
}

// rssSlackKiB is how much the agent's RSS may stay above its level before
// 10,000 connect/close cycles: the Go runtime returns freed memory to the
// kernel lazily, so RSS lags; a leak of even a few hundred bytes per
// connection would exceed it.
const rssSlackKiB = 8 << 10

// settled waits until the agent holds no client connection and its
// descriptor count is wantFDs (any, if negative), and returns its usage.
func (a *agent) settled(t testing.TB, wantFDs int) usage {
	t.Helper()
	deadline := newDeadline()
	for {
		st := a.status(t)
		u := a.usage(t)
		// The status connection itself: one socket and one peer pidfd.
		if st.Connections == 1 && (wantFDs < 0 || u.fds-2 == wantFDs) {
			u.fds -= 2
			return u
		}
		deadline.check(t, "the agent's connections to close")
	}
}
