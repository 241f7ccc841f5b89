package agent

import (
	"bufio"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// A subscriber that does not keep up is dropped with a final error line,
// and the publisher never waits for it.
func TestSlowSubscriberIsDropped(t *testing.T) {
	cfg := testConfig()
	cfg.SubscriberBuffer = 2
	ta := startAgent(t, cfg, newFakeBackend(t))
	ours, theirs := net.Pipe()
	defer theirs.Close()
	c := &conn{a: ta.Agent, nc: ours, log: ta.log, peer: peer{caller: policy.Caller{UID: 1000}}}
	s := ta.addSubscriber(c, "")

	mine := &group{Record: Record{ID: "aaaaaaaaaaaa", OwnerUID: 1000}}
	other := &group{Record: Record{ID: "bbbbbbbbbbbb", OwnerUID: 0}}
	ta.mu.Lock()
	for range 5 {
		ta.publishLocked(other, ipc.Event{Event: ipc.EventRegistered}) // invisible to uid 1000: not counted
	}
	ta.publishLocked(mine, ipc.Event{Event: ipc.EventRegistered})
	ta.publishLocked(mine, ipc.Event{Event: ipc.EventKilling})
	select {
	case <-s.dropped:
		t.Fatal("dropped with the buffer not yet full")
	default:
	}
	ta.publishLocked(mine, ipc.Event{Event: ipc.EventKilled}) // the buffer is full: never blocks
	_, still := ta.subs[s]
	ta.mu.Unlock()
	select {
	case <-s.dropped:
	default:
		t.Fatal("not dropped after overflow")
	}
	if still {
		t.Fatal("a dropped subscriber still receives events")
	}

	s.start()
	_ = theirs.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(theirs).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var r ipc.Response
	if err := json.Unmarshal(line, &r); err != nil || r.OK || r.Error == nil ||
		r.Error.Code != ipc.CodeLimitExceeded || r.Error.Limit != "subscriber_buffer" {
		t.Fatalf("final line %q", line)
	}
	s.stop()
}

// Subscribing to one group streams only its events; other users' groups
// are refused.
func TestSubscribeToOneGroup(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	a, b := spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	ga := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: a.Process.Pid}).Group
	gb := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: b.Process.Pid}).Group
	events := subscribe(t, ta, gb.ID)
	c.ok(ipc.Request{Op: ipc.OpKill, Group: ga.ID})
	c.ok(ipc.Request{Op: ipc.OpKill, Group: gb.ID})
	if ev := events.event(); ev.Group != gb.ID || ev.Event != ipc.EventKilling || ev.Reason != reasonRequest {
		t.Fatalf("first event %+v", ev)
	}
	if ev := events.event(); ev.Group != gb.ID || ev.Event != ipc.EventKilled {
		t.Fatalf("second event %+v", ev)
	}
	// Lines sent on a streaming connection are ignored, not answered.
	events.send(`{"op":"hello"}` + "\n")
	dial(t, ta.sock).fails(ipc.Request{Op: ipc.OpSubscribe, Group: "nosuchgroup1"}, ipc.CodeNotFound)
}
