package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSocketPath(t *testing.T) {
	t.Setenv(SocketEnv, "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // no per-user agent there
	if got := SocketPath(); got != DefaultSocket {
		t.Errorf("SocketPath() = %q without %s, want %q", got, SocketEnv, DefaultSocket)
	}
	t.Setenv(SocketEnv, "/tmp/x.sock")
	if got := SocketPath(); got != "/tmp/x.sock" {
		t.Errorf("SocketPath() = %q, want $%s", got, SocketEnv)
	}
}

func TestDialEmptyPathUsesEnv(t *testing.T) {
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		return []string{reply(req, Response{OK: true, Version: 1, Agent: "fake", Backend: "cgroupfs"})}, false
	})
	t.Setenv(SocketEnv, f.path)
	c := dial(t, "")
	if c.Path() != f.path {
		t.Errorf("Path() = %q, want %q", c.Path(), f.path)
	}
	info, err := c.Hello(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Agent != "fake" || info.Version != 1 || info.Backend != "cgroupfs" {
		t.Errorf("Hello() = %+v", info)
	}
}

func TestDialErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")

	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: a dead agent's leftover

	for _, tc := range []struct{ path, want string }{
		{missing, "is orphand running?"},
		{stale, "no agent is listening"},
	} {
		_, err := Dial(context.Background(), tc.path)
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("Dial(%s) = %v, want an error wrapping ErrUnreachable", tc.path, err)
		}
		var de *DialError
		if !errors.As(err, &de) || de.Path != tc.path {
			t.Fatalf("Dial(%s) = %#v, want a *DialError for the path", tc.path, err)
		}
		for _, want := range []string{tc.path, tc.want, SocketEnv} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Dial(%s) error %q does not mention %q", tc.path, err, want)
			}
		}
	}
}

func TestTypedRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []map[string]any
	killed := 3
	f := newFakeAgent(t, func(req Request, raw []byte) ([]string, bool) {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		mu.Lock()
		seen = append(seen, m)
		mu.Unlock()
		g := &Group{ID: "0123456789ab", Name: req.Name, Kind: KindSubtree, State: StateActive}
		switch req.Op {
		case OpRegister, OpWatch:
			return []string{reply(req, Response{OK: true, Group: g})}, false
		case OpShow:
			return []string{reply(req, Response{OK: true, Group: g, Members: []int{10, 11}})}, false
		case OpList:
			return []string{reply(req, Response{OK: true, Groups: []Group{*g, *g}})}, false
		case OpKill:
			return []string{reply(req, Response{OK: true, Killed: &killed})}, false
		case OpStatus:
			return []string{reply(req, Response{OK: true, Status: &Status{Version: "v9", Backend: "cgroupfs"}})}, false
		}
		return []string{okReply(req)}, false
	})
	c := dial(t, f.path)
	ctx := context.Background()

	g, err := c.Register(ctx, RegisterOptions{Name: "web", Grace: new(1500 * time.Millisecond), Signal: "INT", On: OnDisconnect})
	if err != nil || g.ID != "0123456789ab" || g.Name != "web" {
		t.Fatalf("Register() = %+v, %v", g, err)
	}
	if _, err := c.Register(ctx, RegisterOptions{Pid: 42, Grace: new(time.Duration(0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, RegisterOptions{Grace: new(-time.Second)}); err == nil {
		t.Error("Register with a negative grace succeeded")
	}
	if _, err := c.Watch(ctx, WatchOptions{Pid: 7, Kill: []int{8, 9}, Grace: new(time.Microsecond)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Attach(ctx, "0123456789ab", 12); err != nil {
		t.Fatal(err)
	}
	if gs, err := c.List(ctx); err != nil || len(gs) != 2 {
		t.Fatalf("List() = %v, %v", gs, err)
	}
	if g, members, err := c.Show(ctx, "0123456789ab"); err != nil || g.ID == "" || fmt.Sprint(members) != "[10 11]" {
		t.Fatalf("Show() = %+v, %v, %v", g, members, err)
	}
	if n, err := c.Kill(ctx, "0123456789ab", nil); err != nil || n != 3 {
		t.Fatalf("Kill() = %d, %v", n, err)
	}
	if err := c.Release(ctx, "0123456789ab"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx); err != nil || st.Version != "v9" {
		t.Fatalf("Status() = %+v, %v", st, err)
	}

	want := []string{
		`{"grace_ms":1500,"id":1,"name":"web","on":"disconnect","op":"register","signal":"INT"}`,
		`{"grace_ms":0,"id":2,"op":"register","pid":42}`,
		`{"grace_ms":1,"id":3,"kill":[8,9],"op":"watch","pid":7}`, // 1µs rounds up: a grace asked for is kept
		`{"group":"0123456789ab","id":4,"op":"attach","pid":12}`,
		`{"id":5,"op":"list"}`,
		`{"group":"0123456789ab","id":6,"op":"show"}`,
		`{"group":"0123456789ab","id":7,"op":"kill"}`, // nil grace: absent, the group's own
		`{"group":"0123456789ab","id":8,"op":"release"}`,
		`{"id":9,"op":"status"}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("agent saw %d requests, want %d: %v", len(seen), len(want), seen)
	}
	for i, m := range seen {
		b, _ := json.Marshal(m) // sorted keys
		if string(b) != want[i] {
			t.Errorf("request %d = %s\n want %s", i+1, b, want[i])
		}
	}
}

func TestAgentErrorIsTyped(t *testing.T) {
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		return []string{reply(req, Response{Error: &Error{Code: CodePermissionDenied, Message: "pid 1 is off limits"}})}, false
	})
	c := dial(t, f.path)
	_, err := c.Register(context.Background(), RegisterOptions{Pid: 1})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodePermissionDenied {
		t.Fatalf("Register(pid 1) = %v, want an *Error with code %s", err, CodePermissionDenied)
	}
	// The connection goes on after a refusal.
	_, err = c.Hello(context.Background())
	if !errors.As(err, &e) {
		t.Fatalf("second request: %v", err)
	}
}

func TestResponseWithoutIDAnswersTheRequest(t *testing.T) {
	f := newFakeAgent(t, func(Request, []byte) ([]string, bool) {
		return []string{`{"ok":false,"error":{"code":"bad_request","message":"invalid JSON"}}`}, false
	})
	c := dial(t, f.path)
	_, err := c.Status(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadRequest {
		t.Fatalf("Status() = %v, want bad_request", err)
	}
}

func TestWrongIDIsOutOfSync(t *testing.T) {
	f := newFakeAgent(t, func(Request, []byte) ([]string, bool) {
		return []string{`{"id":999,"ok":true}`}, false
	})
	c := dial(t, f.path)
	if _, err := c.Hello(context.Background()); !errors.Is(err, ErrOutOfSync) {
		t.Fatalf("Hello() with a foreign id = %v, want ErrOutOfSync", err)
	}
	if _, err := c.Hello(context.Background()); !errors.Is(err, ErrOutOfSync) {
		t.Fatalf("second Hello() = %v, want ErrOutOfSync (the connection stays unusable)", err)
	}
}

func TestUndecodableResponse(t *testing.T) {
	f := newFakeAgent(t, func(Request, []byte) ([]string, bool) { return []string{`{"ok":tru`}, false })
	c := dial(t, f.path)
	if _, err := c.Hello(context.Background()); !errors.Is(err, ErrOutOfSync) {
		t.Fatalf("Hello() = %v, want ErrOutOfSync", err)
	}
}

func TestAgentHangsUp(t *testing.T) {
	f := newFakeAgent(t, func(Request, []byte) ([]string, bool) { return nil, true })
	c := dial(t, f.path)
	_, err := c.Hello(context.Background())
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Hello() = %v, want ErrDisconnected", err)
	}
	if _, err := c.Hello(context.Background()); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("after hang-up: %v, want ErrDisconnected", err)
	}
}

func TestOversizedRequestIsNotSent(t *testing.T) {
	var got atomic.Int32
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		got.Add(1)
		return []string{okReply(req)}, false
	})
	c := dial(t, f.path)
	pids := make([]int, MaxLine/5)
	for i := range pids {
		pids[i] = 10000 + i
	}
	_, err := c.Watch(context.Background(), WatchOptions{Pid: 1, Kill: pids})
	if err == nil || !strings.Contains(err.Error(), "over the protocol's limit") {
		t.Fatalf("Watch with %d pids = %v, want a size error", len(pids), err)
	}
	if err := c.Attach(context.Background(), "g", 1); err != nil {
		t.Fatalf("the connection is still usable after a refused send: %v", err)
	}
	if got.Load() != 1 {
		t.Errorf("agent received %d requests, want 1", got.Load())
	}
}

func TestLargeResponse(t *testing.T) {
	groups := make([]Group, 3000) // far over MaxLine once encoded
	for i := range groups {
		groups[i] = Group{ID: fmt.Sprintf("%012x", i), Name: strings.Repeat("n", 40), Kind: KindSubtree}
	}
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		return []string{reply(req, Response{OK: true, Groups: groups})}, false
	})
	c := dial(t, f.path)
	got, err := c.List(context.Background())
	if err != nil || len(got) != len(groups) {
		t.Fatalf("List() = %d groups, %v", len(got), err)
	}
}

// TestConcurrentRequestsAreSerialised checks that the agent never sees a
// second request on the connection before it answered the first, and that
// every caller gets its own answer.
func TestConcurrentRequestsAreSerialised(t *testing.T) {
	var inFlight atomic.Int32
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		if inFlight.Add(1) != 1 {
			t.Errorf("request %s arrived while another was unanswered", req.ID)
		}
		defer inFlight.Add(-1)
		return []string{reply(req, Response{OK: true, Group: &Group{ID: req.Group}})}, false
	})
	c := dial(t, f.path)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			for j := range 10 {
				id := fmt.Sprintf("g%d-%d", i, j)
				g, _, err := c.Show(context.Background(), id)
				if err != nil || g.ID != id {
					t.Errorf("Show(%s) = %+v, %v", id, g, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestCancelledRequestThenNext: a request whose context ends before the
// answer returns the context's error, and the late answer is skipped so
// the next request gets its own.
func TestCancelledRequestThenNext(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		if req.Op == OpKill {
			<-release // answer only once the client gave up
		}
		return []string{reply(req, Response{OK: true, Group: &Group{ID: req.Group}})}, false
	})
	t.Cleanup(unblock) // registered after the fake's, so it runs first, even on failure
	c := dial(t, f.path)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Kill(ctx, "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Kill() = %v, want the context's deadline", err)
	}
	unblock()
	g, _, err := c.Show(context.Background(), "next")
	if err != nil || g.ID != "next" {
		t.Fatalf("Show() after a cancelled request = %+v, %v", g, err)
	}
}

func TestCancelWhileWaitingForTheConnection(t *testing.T) {
	release := make(chan struct{})
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		<-release
		return []string{okReply(req)}, false
	})
	c := dial(t, f.path)
	done := make(chan error)
	go func() { done <- c.Release(context.Background(), "a") }()
	for len(c.sem) == 0 { // until the first request holds the connection
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Release(ctx, "b"); !errors.Is(err, context.Canceled) {
		t.Errorf("Release() queued behind another = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseDuringRequest(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newFakeAgent(t, func(req Request, _ []byte) ([]string, bool) {
		<-release
		return nil, true
	})
	c := dial(t, f.path)
	done := make(chan error)
	go func() { _, err := c.Status(context.Background()); done <- err }()
	for len(c.sem) == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Status() interrupted by Close = %v, want net.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

// TestGraceMS: a grace goes on the wire in whole milliseconds, a fraction
// rounded up so that a grace asked for is kept (orphanctl's --grace relies
// on it); nil means the agent's default.
func TestGraceMS(t *testing.T) {
	if ms, err := graceMS(nil); ms != nil || err != nil {
		t.Errorf("nil grace = %v, %v; want nil (the agent's default)", ms, err)
	}
	for in, want := range map[time.Duration]int64{0: 0, time.Microsecond: 1, 1500 * time.Microsecond: 2, 2 * time.Second: 2000} {
		if ms, err := graceMS(&in); err != nil || ms == nil || *ms != want {
			t.Errorf("grace %v = %v ms, %v; want %d", in, ms, err, want)
		}
	}
	neg := -time.Second
	if _, err := graceMS(&neg); err == nil {
		t.Error("a negative grace was accepted")
	}
}
