package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// startFuzzAgent runs an agent with the fake backend for the whole fuzz
// run, logging nowhere (a log line per input would be most of the work).
func startFuzzAgent(f *testing.F) *Agent {
	f.Helper()
	ln, err := net.Listen("unix", filepath.Join(f.TempDir(), "orphand.sock"))
	if err != nil {
		f.Fatal(err)
	}
	cfg := testConfig()
	ready := make(chan struct{})
	cfg.OnReady = func() { close(ready) }
	a, err := New(cfg, newFakeBackend(f), slog.New(slog.DiscardHandler))
	if err != nil {
		ln.Close()
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		f.Fatalf("Run ended before ready: %v", err)
	}
	return a
}

// serveBytes runs one connection of caller over a socket pair: in is what
// the client sends before it shuts its side; the result is everything the
// agent wrote back.
func serveBytes(t *testing.T, a *Agent, caller policy.Caller, in []byte) []byte {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	server, err := fileConn(fds[0])
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	client, err := fileConn(fds[1])
	if err != nil {
		server.Close()
		t.Fatal(err)
	}
	defer client.Close()
	c := a.newConn(server, peer{caller: caller})
	if err := a.addConn(c); err != nil {
		server.Close()
		t.Fatalf("addConn: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); c.serve() }()
	go func() {
		_, _ = client.Write(in) // fails once the agent hangs up (too_large)
		_ = client.(*net.UnixConn).CloseWrite()
	}()
	_ = client.SetReadDeadline(time.Now().Add(time.Minute))
	out, err := io.ReadAll(client)
	if err != nil && !isReset(err) {
		t.Fatalf("read the agent's answers: %v", err)
	}
	<-done
	return out
}

func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close()
	return net.FileConn(f)
}

func isReset(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("reset"))
}

// FuzzServe feeds arbitrary bytes to a connection's whole request path —
// line reader, decoder, route table, every handler's checks — as an
// unprivileged caller in another pid namespace (it cannot name a process,
// so no real process is ever touched). The agent must answer every line
// with one JSON response at most, never grant a group op, and keep
// serving.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"op":"hello","version":1,"id":1}` + "\n",
		`{"op":"register","name":"../../x","on":"disconnect","grace_ms":5,"signal":"KILL"}` + "\n",
		`{"op":"watch","pid":4294967297,"kill":[1,2,-3]}` + "\n",
		`{"op":"attach","group":"../..","pid":1}` + "\n" + `{"op":"kill","group":"abc","grace_ms":-1}` + "\n",
		`{"op":"list"}` + "\n" + `{"op":"status"}` + "\n" + `{"op":"show","group":"x\u0000"}` + "\n",
		`{"op":"release","group":"aaaaaaaaaaaa"}` + "\n" + `{"op":"subscribe","group":"nope"}` + "\n",
		`{"op":"subscribe"}` + "\n" + `{"op":"hello"}` + "\n",
		"\n \r\n\x00\xff{\"op\":",
		`[{"op":"hello"}]` + "\n" + `{"op":"hello","id":{"a":[[[[]]]]}}`,
	} {
		f.Add([]byte(s))
	}
	a := startFuzzAgent(f)
	nobody := policy.Caller{UID: 65534, GID: 65534}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := serveBytes(t, a, nobody, in)
		lines := bytes.Count(in, []byte("\n")) + 1
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 4*ipc.MaxLine)
		n := 0
		for sc.Scan() {
			n++
			var r ipc.Response
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("answer %q is not a response: %v", sc.Bytes(), err)
			}
			if r.OK == (r.Error != nil) {
				t.Fatalf("answer %q: ok and error disagree", sc.Bytes())
			}
			if r.Group != nil || r.Killed != nil || len(r.Groups) > 0 {
				t.Fatalf("an unprivileged caller that can name no process got %q", sc.Bytes())
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("answers: %v", err)
		}
		if n > lines {
			t.Fatalf("%d answers to %d lines", n, lines)
		}
		if err := a.Ping(); err != nil {
			t.Fatalf("agent no longer serving: %v", err)
		}
	})
}
