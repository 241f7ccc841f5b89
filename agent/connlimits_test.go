package agent

import (
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// wantLimit reads one response and fails unless it is the error that ends
// a connection over limit, followed by the agent hanging up.
func (c *client) wantLimit(code, limit string) {
	c.t.Helper()
	r := c.recv()
	if r.OK || r.Error == nil || r.Error.Code != code || r.Error.Limit != limit {
		c.t.Fatalf("got ok=%v error=%+v, want %s with limit %s", r.OK, r.Error, code, limit)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if b, err := c.r.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("after %s the connection should be closed; read %q, %v", limit, b, err)
	}
}

func TestIdleConnectionIsDropped(t *testing.T) {
	cfg := testConfig()
	cfg.Conn.IdleTimeout = 200 * time.Millisecond
	ta := startAgent(t, cfg, newFakeBackend(t))

	dial(t, ta.sock).wantLimit(ipc.CodeLimitExceeded, ipc.LimitIdleTimeout)

	// Blank lines are not requests: a client that sends nothing else is
	// dropped all the same.
	blank := dial(t, ta.sock)
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := make(chan struct{})
	defer close(stop)
	wg.Go(func() {
		for {
			if _, err := blank.nc.Write([]byte("\n")); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	blank.wantLimit(ipc.CodeLimitExceeded, ipc.LimitIdleTimeout)
}

// Connections that wait on purpose are never dropped for idling: a
// subscription, and the holder of an on=disconnect group (dropping it
// would kill the group).
func TestWaitingConnectionsAreExemptFromIdle(t *testing.T) {
	cfg := testConfig()
	cfg.Conn.IdleTimeout = 100 * time.Millisecond
	ta := startAgent(t, cfg, newFakeBackend(t))
	sub := dial(t, ta.sock)
	sub.ok(ipc.Request{Op: ipc.OpSubscribe})
	holder := dial(t, ta.sock)
	sleeper := spawn(t, "sleep", "300")
	g := holder.ok(ipc.Request{Op: ipc.OpRegister, Pid: sleeper.Process.Pid, On: ipc.OnDisconnect}).Group
	sub.waitEvent(ipc.EventRegistered, g.ID)

	time.Sleep(1 * time.Second) // ten idle limits: not exempt, both would be gone

	other := dial(t, ta.sock)
	if st := other.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Group.State; st != ipc.StateActive {
		t.Fatalf("the on=disconnect group is %s after its holder idled", st)
	}
	holder.ok(ipc.Request{Op: ipc.OpHello})
	other.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	sub.waitEvent(ipc.EventKilled, g.ID)
}

func TestTricklingClientIsDropped(t *testing.T) {
	cfg := testConfig()
	cfg.Conn.IdleTimeout = 0
	cfg.Conn.LineTimeout = 500 * time.Millisecond
	ta := startAgent(t, cfg, newFakeBackend(t))

	slow := dial(t, ta.sock)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for _, b := range []byte(`{"op":"hello","id":1}` + "\n") {
			if _, err := slow.nc.Write([]byte{b}); err != nil {
				return // dropped
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// Others are served while it trickles.
	for range 3 {
		c := dial(t, ta.sock)
		c.ok(ipc.Request{Op: ipc.OpStatus})
		c.nc.Close()
	}
	slow.wantLimit(ipc.CodeLimitExceeded, ipc.LimitLineTimeout)

	// A whole request without its newline is not a request: it is dropped
	// at the line limit, not served.
	unterminated := dial(t, ta.sock)
	unterminated.send(`{"op":"hello","id":2}`)
	unterminated.wantLimit(ipc.CodeLimitExceeded, ipc.LimitLineTimeout)

	// With no idle limit, a silent client stays (nothing of a line came).
	silent := dial(t, ta.sock)
	time.Sleep(time.Second)
	silent.ok(ipc.Request{Op: ipc.OpHello})
}

func TestMaxRequest(t *testing.T) {
	cfg := testConfig()
	cfg.Conn.MaxRequest = 4096
	ta := startAgent(t, cfg, newFakeBackend(t))
	c := dial(t, ta.sock)
	head, tail := `{"op":"hello","id":1,"pad":"`, "\"}\n"
	c.send(head + strings.Repeat("x", 4096-len(head)-len(tail)) + tail)
	if r := c.recv(); !r.OK {
		t.Fatalf("a line of exactly max_request bytes: %+v", r.Error)
	}
	big := dial(t, ta.sock)
	go func() { _, _ = big.nc.Write([]byte(head + strings.Repeat("x", 4096) + tail)) }()
	big.wantLimit(ipc.CodeTooLarge, ipc.LimitMaxRequest)
}

func TestConnLimitsValidate(t *testing.T) {
	if err := DefaultConnLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []ConnLimits{
		{IdleTimeout: -1, MaxRequest: ipc.MaxLine},
		{LineTimeout: -1, MaxRequest: ipc.MaxLine},
		{MaxRequest: minRequest - 1},
		{MaxRequest: ipc.MaxLine + 1},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// waitExecd waits until pid runs comm (a shell script has reached its exec).
func waitExecd(t *testing.T, pid int, comm string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if st, err := proctree.ReadStat(pid); err == nil && st.Comm == comm {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became %s", pid, comm)
		}
	}
}
