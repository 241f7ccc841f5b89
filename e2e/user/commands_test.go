package user

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// TestQuotaEventsAndCommands: the per-user agent reads the user's own
// configuration file (~/.config/orphand/orphand.toml) — here a quota of
// one group — and serves events, kill and release like the system agent.
func TestQuotaEventsAndCommands(t *testing.T) {
	u := newAccount(t, alice)
	b := binaries(t)
	cfgDir := filepath.Join(u.home, ".config", "orphand")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "orphand.toml"), []byte("[limits]\ngroups_per_uid = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u.startAgent(t, b, -1)
	events := u.follow(t, b)

	s := u.spawn(t, b, "first", -1)
	g, members := u.waitGroup(t, b, "first", 1)
	events.wait(t, g.ID, ipc.EventRegistered)

	// A second group is over the user's quota.
	second := u.command(-1, b.orphanctl, "run", "--name", "second", "--", "true")
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(string(out), ipc.LimitGroupsPerUID) {
		t.Errorf("a second group over groups_per_uid = 1: %v\n%s\nwant exit 125 naming %s", err, out, ipc.LimitGroupsPerUID)
	}

	held := hold(t, members...)
	if r := u.mustCtl(t, b, "kill", g.ID); r.Killed == nil || *r.Killed < 1 {
		t.Errorf("orphanctl kill %s: %+v", g.ID, r)
	}
	waitGone(t, "a member", held)
	events.wait(t, g.ID, ipc.EventKilling)
	events.wait(t, g.ID, ipc.EventKilled)
	<-s.done // the spawner was a member

	// The quota is free again: a group released is left alone.
	r := u.spawn(t, b, "released", -1)
	g, _ = u.waitGroup(t, b, "released", 1)
	u.mustCtl(t, b, "release", g.ID)
	events.wait(t, g.ID, ipc.EventReleased)
	if err := r.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the released group's spawner is gone: %v", err)
	}
}

// eventStream is `orphanctl events --json` run as the user.
type eventStream struct {
	lines chan ipc.Event
}

// follow starts following the user's events; the cleanup stops it.
func (u *account) follow(t *testing.T, b bins) *eventStream {
	t.Helper()
	cmd := u.command(-1, b.orphanctl, "events", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	es := &eventStream{lines: make(chan ipc.Event, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(es.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev ipc.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				es.lines <- ev
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range es.lines { // drain so that the reader ends
		}
		<-done
		_ = cmd.Wait()
	})
	// Events published before the agent has the subscription are not
	// sent: wait until it counts one.
	deadline := time.Now().Add(waitLong)
	for u.mustCtl(t, b, "status").Status.Subscribers < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("orphanctl events did not subscribe within %v", waitLong)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return es
}

// wait waits for the event name of group id, skipping others.
func (es *eventStream) wait(t *testing.T, id, name string) ipc.Event {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case ev, ok := <-es.lines:
			if !ok {
				t.Fatalf("the event stream ended before %s of %s", name, id)
			}
			if ev.Group == id && ev.Event == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event for %s within %v", name, id, waitLong)
		}
	}
}
