package agent

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/version"
	"github.com/orphand/orphand/ipc"
)

func TestHelloAndStatus(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	r := c.ok(ipc.Request{Op: ipc.OpHello, Version: 1, ID: json.RawMessage(`"h1"`)})
	if string(r.ID) != `"h1"` || r.Version != ipc.Version || r.Agent != version.String() || r.Backend != "fake" {
		t.Fatalf("hello: %+v", r)
	}
	for _, f := range []string{"pidfd", "watch", "cgroup.kill"} {
		if !strings.Contains(strings.Join(r.Features, ","), f) {
			t.Errorf("features %v lack %s", r.Features, f)
		}
	}
	st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status
	if st == nil || st.Pid == 0 || st.Backend != "fake" || st.Connections != 1 || st.Groups[ipc.StateActive] != 0 {
		t.Fatalf("status: %+v", st)
	}
	if st.Cgroup["backend"] != "fake" || st.Cgroup["cgroup_kill"] != true {
		t.Errorf("status cgroup features: %v", st.Cgroup)
	}
}

func TestBadInputKeepsConnection(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	tests := []struct {
		line, code, id string
	}{
		{`{"op":"hello"`, ipc.CodeBadRequest, ""},
		{`not json at all`, ipc.CodeBadRequest, ""},
		{`[1,2,3]`, ipc.CodeBadRequest, ""},
		{`"hello"`, ipc.CodeBadRequest, ""},
		{`{"id":7}`, ipc.CodeBadRequest, "7"},
		{`{"op":"fly","id":"x"}`, ipc.CodeUnknownOp, `"x"`},
		{`{"op":"hello","id":{"a":[1]},"pid":"seven"}`, ipc.CodeBadRequest, `{"a":[1]}`},
		{`{"op":"kill","id":3}`, ipc.CodeBadRequest, "3"},
		{`{"op":"show","group":"nope","id":4}`, ipc.CodeNotFound, "4"},
		{`{"op":"register","signal":"SIGNOPE","id":5}`, ipc.CodeBadRequest, "5"},
		{`{"op":"register","on":"never","id":6}`, ipc.CodeBadRequest, "6"},
		{`{"op":"register","grace_ms":-1,"id":8}`, ipc.CodeBadRequest, "8"},
		{`{"op":"watch","pid":1,"id":9}`, ipc.CodeBadRequest, "9"},
		{"\x00\xff\xfe", ipc.CodeBadRequest, ""},
	}
	for _, tt := range tests {
		c.send(tt.line + "\n")
		r := c.recv()
		if r.OK || r.Error == nil || r.Error.Code != tt.code || string(r.ID) != tt.id {
			t.Errorf("%q: got ok=%v id=%s error=%+v, want %s id %q", tt.line, r.OK, r.ID, r.Error, tt.code, tt.id)
		}
	}
	c.send("\n  \r\n") // blank lines are skipped without an answer
	r := c.ok(ipc.Request{Op: ipc.OpHello, ID: json.RawMessage(`99`)})
	if string(r.ID) != "99" {
		t.Fatalf("id %s", r.ID)
	}
}

func TestOversizeLineClosesConnection(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))

	// A line of exactly MaxLine bytes, newline included, is accepted.
	c := dial(t, ta.sock)
	head := `{"op":"hello","id":1,"pad":"`
	tail := "\"}\n"
	c.send(head + strings.Repeat("x", ipc.MaxLine-len(head)-len(tail)) + tail)
	if r := c.recv(); !r.OK || string(r.ID) != "1" {
		t.Fatalf("a line of exactly MaxLine bytes: %+v", r)
	}
	r := c.ok(ipc.Request{Op: ipc.OpHello, ID: json.RawMessage(`2`)})
	if string(r.ID) != "2" {
		t.Fatalf("id %s", r.ID)
	}

	// One byte more is too large, and the connection is closed.
	big := dial(t, ta.sock)
	go func() { // the agent may close before we finish writing
		_, _ = big.nc.Write([]byte(head + strings.Repeat("x", ipc.MaxLine) + tail))
	}()
	r = big.recv()
	if r.OK || r.Error == nil || r.Error.Code != ipc.CodeTooLarge {
		t.Fatalf("oversize: %+v", r)
	}
	_ = big.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	// EOF, or a reset: the agent closed with our unread bytes in its buffer.
	if _, err := big.r.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after too_large, read = %v, want EOF", err)
	}
	dial(t, ta.sock).ok(ipc.Request{Op: ipc.OpHello}) // others are still served
}

func TestSilentAndHalfLineClientsBlockNobody(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	silent := dial(t, ta.sock)
	_ = silent
	half := dial(t, ta.sock)
	half.send(`{"op":"hel`)
	for range 5 {
		c := dial(t, ta.sock)
		c.ok(ipc.Request{Op: ipc.OpStatus})
		c.nc.Close()
	}
	// The half line completes later and is served.
	half.send(`lo","id":5}` + "\n")
	if r := half.recv(); !r.OK || string(r.ID) != "5" {
		t.Fatalf("completed half line: %+v", r)
	}
}

func TestUnterminatedLastLineIsServed(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	c.send(`{"op":"hello","id":"last"}`)
	if err := c.nc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if r := c.recv(); !r.OK || string(r.ID) != `"last"` {
		t.Fatalf("%+v", r)
	}
}
