package compat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orphand/orphand/internal/peercred"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeHandler records what the server hands it. block, when set, holds
// every Handle until it is closed.
type fakeHandler struct {
	mu       sync.Mutex
	got      []Request
	handled  chan struct{} // receives once per record handled
	started  chan struct{} // receives once per record given to Handle
	refuse   error
	block    chan struct{}
	admitted int
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{handled: make(chan struct{}, 1024), started: make(chan struct{}, 1024)}
}

func (h *fakeHandler) Admit(p *Peer) (func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse != nil {
		return nil, h.refuse
	}
	h.admitted++
	return func() { h.mu.Lock(); h.admitted--; h.mu.Unlock() }, nil
}

func (h *fakeHandler) Handle(r Request) {
	h.started <- struct{}{}
	if h.block != nil {
		<-h.block
	}
	if r.Peer.Proc == nil || r.Peer.Proc.Exited() {
		panic("the peer's process handle must stay open while a record is handled")
	}
	h.mu.Lock()
	h.got = append(h.got, r)
	h.mu.Unlock()
	h.handled <- struct{}{}
}

func (h *fakeHandler) requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.got...)
}

// wait waits until n more records have been handled.
func (h *fakeHandler) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.handled:
		case <-time.After(30 * time.Second):
			t.Fatalf("record not handled; have %d", len(h.requests()))
		}
	}
}

// logBuf is a log the tests read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog waits until the log holds want.
func (l *logBuf) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(l.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, l)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testServer struct {
	sock string
	log  *logBuf
	stop func()
}

func startServer(t *testing.T, h Handler, tune func(*Config)) *testServer {
	t.Helper()
	peers, err := peercred.NewReader(peercred.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{}
	cfg := Config{
		Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), Peers: peers,
		IdleTimeout: time.Minute, RecordTimeout: time.Minute, WriteTimeout: 10 * time.Second, Workers: 4, Queue: 16,
	}
	if tune != nil {
		tune(&cfg)
	}
	s, err := NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "compat.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testServer{sock: sock, log: lb, stop: stop}
}

func (s *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	nc, err := net.Dial("unix", s.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// send writes records on a new connection and closes it, as
// orphand-forkwait.so does.
func (s *testServer) send(t *testing.T, recs ...Record) {
	t.Helper()
	nc := s.dial(t)
	var b []byte
	for _, r := range recs {
		b = r.Append(b)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// ping sends a PING on nc and reads the echo.
func ping(t *testing.T, nc net.Conn, r Record) {
	t.Helper()
	if _, err := nc.Write(r.Append(nil)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, RecordSize)
	if _, err := io.ReadFull(nc, got); err != nil {
		t.Fatalf("no echo: %v", err)
	}
	if !bytes.Equal(got, r.Append(nil)) {
		t.Fatalf("echo %x, want %x", got, r.Append(nil))
	}
}

func TestServerPing(t *testing.T) {
	s := startServer(t, newFakeHandler(), nil)
	nc := s.dial(t)
	for _, r := range []Record{{1, 2, ActionPing}, {0, 0, ActionPing}, {0xffffffff, 7, ActionPing}} {
		ping(t, nc, r)
	}
}

func TestServerOrdersRecords(t *testing.T) {
	h := newFakeHandler()
	s := startServer(t, h, nil)
	s.send(t, Record{10, 11, ActionRegister})
	s.send(t, Record{10, 11, ActionUnregister})
	nc := s.dial(t)
	var b []byte
	for i := range 5 {
		b = Record{20, uint32(21 + i), ActionRegister}.Append(b)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	ping(t, nc, Record{0, 0, ActionPing}) // answered once the five are handled
	h.wait(t, 2+5)
	var first, second Seq
	var persistent []Seq
	for _, r := range h.requests() {
		switch {
		case r.Record.Parent == 10 && r.Record.Action == ActionRegister:
			first = r.Seq
		case r.Record.Parent == 10:
			second = r.Seq
		default:
			persistent = append(persistent, r.Seq)
		}
		if r.Peer.UID != uint32(os.Getuid()) {
			t.Errorf("peer uid %d", r.Peer.UID)
		}
	}
	if first.Compare(second) >= 0 {
		t.Errorf("REGISTER %+v is not before the UNREGISTER %+v sent on a later connection", first, second)
	}
	if len(persistent) != 5 {
		t.Fatalf("%d records of the persistent connection handled", len(persistent))
	}
	for _, q := range persistent {
		if q.Conn != persistent[0].Conn || q.Conn <= second.Conn || q.Record > 4 {
			t.Errorf("persistent connection's record numbered %+v", q)
		}
	}
}

// TestServerPingWaitsForEarlierRecords: a PING is a barrier for its own
// connection only; reading goes on meanwhile on other connections.
func TestServerPingWaitsForEarlierRecords(t *testing.T) {
	h := newFakeHandler()
	h.block = make(chan struct{})
	s := startServer(t, h, nil)
	nc := s.dial(t)
	if _, err := nc.Write(append(Record{30, 31, ActionRegister}.Append(nil), Record{1, 1, ActionPing}.Append(nil)...)); err != nil {
		t.Fatal(err)
	}
	other := s.dial(t)
	ping(t, other, Record{2, 2, ActionPing}) // another connection is not held up
	_ = nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := nc.Read(make([]byte, RecordSize)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the PING was answered (%d bytes, %v) before the REGISTER before it was handled", n, err)
	}
	close(h.block)
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(nc, make([]byte, RecordSize)); err != nil {
		t.Fatalf("no echo once the REGISTER was handled: %v", err)
	}
}

func TestServerDropsMalformedInput(t *testing.T) {
	h := newFakeHandler()
	s := startServer(t, h, func(c *Config) { c.RecordTimeout = 200 * time.Millisecond })

	s.send(t, Record{0, 5, ActionRegister}, Record{40, 41, ActionRegister}) // a bad pid: that record only
	h.wait(t, 1)
	s.log.waitLog(t, "compat: record dropped")

	nc := s.dial(t) // an unknown action: the connection is closed, what follows is not read
	_, _ = nc.Write(append(Record{50, 51, 9}.Append(nil), Record{52, 53, ActionRegister}.Append(nil)...))
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("connection after an unknown action: %v, want it closed", err)
	}
	s.log.waitLog(t, "unknown action")

	short := s.dial(t) // a short record at the end of the stream
	_, _ = short.Write(append(Record{60, 61, ActionRegister}.Append(nil), 1, 2, 3))
	short.Close()
	s.log.waitLog(t, "bytes=3")
	h.wait(t, 1)

	stalled := s.dial(t) // half a record, then nothing: dropped after the record timeout
	_, _ = stalled.Write([]byte{1, 2, 3, 4, 5})
	s.log.waitLog(t, "did not arrive whole in time")

	ping(t, s.dial(t), Record{3, 3, ActionPing}) // the socket still serves
	for _, r := range h.requests() {
		if r.Record.Parent != 40 && r.Record.Parent != 60 {
			t.Errorf("handled %+v, which should have been dropped", r.Record)
		}
	}
}

func TestServerRefusedConnection(t *testing.T) {
	h := newFakeHandler()
	h.refuse = errors.New("limit connections_per_uid reached")
	s := startServer(t, h, nil)
	nc := s.dial(t)
	_, _ = nc.Write(Record{1, 1, ActionPing}.Append(nil))
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("a refused connection: %v, want it closed", err)
	}
	s.log.waitLog(t, "connection refused")
}

// TestServerStopsWithWorkInFlight: records read are handled; Serve returns
// once they are, with every goroutine gone (goleak checks at the end).
func TestServerStopsWithWorkInFlight(t *testing.T) {
	h := newFakeHandler()
	h.block = make(chan struct{})
	s := startServer(t, h, nil)
	for i := range 3 {
		s.send(t, Record{70, uint32(71 + i), ActionRegister})
	}
	for range 3 {
		<-h.started
	}
	s.dial(t) // a connection that sends nothing does not hold up the stop
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Serve returned while records were being handled")
	case <-time.After(50 * time.Millisecond):
	}
	close(h.block)
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
	if n := len(h.requests()); n != 3 {
		t.Fatalf("%d of the 3 records read were handled", n)
	}
	if _, err := net.Dial("unix", s.sock); err == nil {
		t.Fatal("still accepting after the stop")
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
