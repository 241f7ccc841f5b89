package ipc

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// fakeAgent is a tiny protocol peer for the client's unit tests: it reads
// request lines and answers with whatever its handler returns. It is a fake
// for testing the client only; the real agent is tested end to end in e2e/.
type fakeAgent struct {
	t    *testing.T
	path string
	ln   *net.UnixListener
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

// handler answers one request with raw lines (each gets a newline), and may
// return close=true to hang up afterwards.
type handler func(req Request, raw []byte) (lines []string, close bool)

func newFakeAgent(t *testing.T, h handler) *fakeAgent {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAgent{t: t, path: path, ln: ln}
	f.wg.Add(1)
	go f.accept(h)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeAgent) accept(h handler) {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, conn)
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer conn.Close()
			f.serve(conn, h)
		}()
	}
}

func (f *fakeAgent) serve(conn net.Conn, h handler) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, MaxLine), MaxLine)
	for sc.Scan() {
		var req Request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			f.t.Errorf("fake agent: client sent invalid JSON %q: %v", sc.Bytes(), err)
			return
		}
		lines, hangUp := h(req, append([]byte(nil), sc.Bytes()...))
		for _, l := range lines {
			if _, err := conn.Write([]byte(l + "\n")); err != nil {
				return
			}
		}
		if hangUp {
			return
		}
	}
}

// stop closes the listener and every connection, and waits for the
// goroutines.
func (f *fakeAgent) stop() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// reply marshals a response to req, echoing its id.
func reply(req Request, resp Response) string {
	resp.ID = req.ID
	b, err := json.Marshal(resp)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func okReply(req Request) string { return reply(req, Response{OK: true}) }
