package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	if dir := os.Getenv(subreaperEnv); dir != "" {
		os.Exit(subreaperMain(dir))
	}
	goleak.VerifyTestMain(m)
}

// testLogger writes the agent's log to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testAgent is an agent running on a socket in a temporary directory.
type testAgent struct {
	*Agent
	sock string
	stop func()
	logs *testutil.SyncBuffer // what it logged, also in the test's log
}

// startAgent runs an agent until the test ends; the cleanup checks that Run
// returned without error.
func startAgent(t testing.TB, cfg Config, b cgroup.Backend, opts ...Option) *testAgent {
	t.Helper()
	dir := testutil.ReachableTempDir(t) // a client of another uid connects too
	sock := filepath.Join(dir, "orphand.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	cfg.OnReady = func() { close(ready) }
	logs := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, b, log, opts...)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	stop := runAgent(t, a, ln, ready, nil)
	t.Cleanup(stop)
	return &testAgent{Agent: a, sock: sock, stop: stop, logs: logs}
}

// runAgent runs a on ln and returns once it is ready (its Config.OnReady
// closed ready). The stop it returns cancels Run, waits for it, reports its
// error and then calls after (nil for nothing), once however often it is
// called. If Run ends before ready, runAgent calls after and fails the test.
func runAgent(t testing.TB, a *Agent, ln net.Listener, ready <-chan struct{}, after func()) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if after != nil {
				after()
			}
		})
	}
	select {
	case <-ready:
		return stop
	case err := <-done:
		cancel()
		if after != nil {
			after()
		}
		t.Fatalf("Run ended before ready: %v", err)
		return nil
	}
}

// stopAgent stops the agent now and waits for Run.
func stopAgent(t *testing.T, ta *testAgent) {
	t.Helper()
	ta.stop()
}

func testConfig() Config {
	c := DefaultConfig()
	c.ShutdownGrace = 2 * time.Second
	return c
}

// client speaks raw protocol lines.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(t testing.TB, sock string) *client {
	t.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReaderSize(nc, 1<<20)}
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(line)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recvLine reads one line, failing the test after a generous timeout.
func (c *client) recvLine() []byte {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		c.t.Fatalf("read response: %v (got %q)", err, line)
	}
	return line
}

func (c *client) recv() ipc.Response {
	c.t.Helper()
	line := c.recvLine()
	var r ipc.Response
	if err := json.Unmarshal(line, &r); err != nil {
		c.t.Fatalf("response %q: %v", line, err)
	}
	return r
}

// do sends req and returns the response.
func (c *client) do(req ipc.Request) ipc.Response {
	c.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(string(b) + "\n")
	return c.recv()
}

// ok sends req and fails the test unless it succeeds.
func (c *client) ok(req ipc.Request) ipc.Response {
	c.t.Helper()
	r := c.do(req)
	if !r.OK || r.Error != nil {
		c.t.Fatalf("%s: %+v", req.Op, r.Error)
	}
	return r
}

// fails sends req and fails the test unless the answer is an error with
// code.
func (c *client) fails(req ipc.Request, code string) *ipc.Error {
	c.t.Helper()
	r := c.do(req)
	if r.OK || r.Error == nil || r.Error.Code != code {
		c.t.Fatalf("%s: got ok=%v error=%+v, want code %s", req.Op, r.OK, r.Error, code)
	}
	return r.Error
}

// event reads the next event line of a subscription.
func (c *client) event() ipc.Event {
	c.t.Helper()
	line := c.recvLine()
	var ev ipc.Event
	if err := json.Unmarshal(line, &ev); err != nil || ev.Event == "" {
		c.t.Fatalf("event line %q: %v", line, err)
	}
	return ev
}

// waitEvent reads events until one named name for group arrives.
func (c *client) waitEvent(name, group string) ipc.Event {
	c.t.Helper()
	for {
		ev := c.event()
		if ev.Event == name && (group == "" || ev.Group == group) {
			return ev
		}
	}
}

// spawn starts a command that the test kills and reaps when it ends.
func spawn(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	})
	return cmd
}

// open holds a process for checks that survive pid reuse.
func open(t testing.TB, pid int) *proctree.Process {
	t.Helper()
	p, err := proctree.Open(pid)
	if err != nil {
		t.Fatalf("open pid %d: %v", pid, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// waitExit waits for p to exit (a zombie counts).
func waitExit(t testing.TB, p *proctree.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("pid %d did not exit: %v", p.Pid(), err)
	}
}

// alive reports whether p has not exited.
func alive(p *proctree.Process) bool { return !p.Exited() }

// waitChildren waits until pid has n children and returns them.
func waitChildren(t testing.TB, pid, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		kids := children(pid)
		if len(kids) >= n {
			return kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d has %d children, want %d", pid, len(kids), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

// jsonUnmarshalLine decodes the first line of out.
func jsonUnmarshalLine(out []byte, v any) error {
	line, _, _ := strings.Cut(string(out), "\n")
	return json.Unmarshal([]byte(line), v)
}
