package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// rawConn is a connection that speaks bytes, not the client library.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (a *agent) raw(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", a.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReaderSize(c, 1<<20)}
}

func (r *rawConn) send(b []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(goneTimeout))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("send %.40q: %v", b, err)
	}
}

// response reads one response line.
func (r *rawConn) response() ipc.Response {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(goneTimeout))
	line, err := r.r.ReadBytes('\n')
	if err != nil {
		r.t.Fatalf("read a response: %v (after %q)", err, line)
	}
	var resp ipc.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		r.t.Fatalf("response %q is not JSON: %v", line, err)
	}
	return resp
}

func (r *rawConn) wantError(what, code string) ipc.Response {
	r.t.Helper()
	resp := r.response()
	if resp.OK || resp.Error == nil || resp.Error.Code != code {
		r.t.Errorf("%s: response %+v (error %+v), want %s", what, resp, resp.Error, code)
	}
	return resp
}

// testBadInput: invalid JSON, unknown ops, oversized and half lines never
// crash or wedge the agent, and others are served meanwhile.
func testBadInput(t *testing.T, a *agent) {
	// A client that sends half a line, and one that sends nothing: they
	// hold up nobody. (The agent's line_timeout, 10 s by default, ends a
	// half line eventually; this part takes milliseconds.)
	half := a.raw(t)
	half.send([]byte(`{"op":"hel`))
	_ = a.raw(t)
	ctx, cancel := context.WithTimeout(context.Background(), goneTimeout)
	defer cancel()
	sc := a.client(t)
	for {
		// Served while the agent holds the half-line and silent
		// connections: it counts them once it has accepted them.
		st, err := sc.Status(ctx)
		if err != nil {
			t.Fatalf("status while a half line is pending: %v", err)
		}
		if st.Connections >= 3 {
			break
		}
		sleepBriefly()
	}
	half.send([]byte(`lo","version":1}` + "\n"))
	if resp := half.response(); !resp.OK {
		t.Errorf("the half line, completed, gets %+v", resp.Error)
	}

	c := a.raw(t)
	c.send([]byte("this is not JSON\n"))
	c.wantError("invalid JSON", ipc.CodeBadRequest)
	c.send([]byte("\x00\xff\xfe\x01{]\n"))
	c.wantError("binary garbage", ipc.CodeBadRequest)
	c.send([]byte(`{"op":"frobnicate","id":7}` + "\n"))
	if resp := c.wantError("unknown op", ipc.CodeUnknownOp); string(resp.ID) != "7" {
		t.Errorf("unknown op: id %s not echoed", resp.ID)
	}
	c.send([]byte(`{"op":"register","pid":"twelve","id":"s"}` + "\n"))
	c.wantError("a pid of the wrong type", ipc.CodeBadRequest)
	c.send([]byte(`{"op":"show","group":"../../etc","id":1}` + "\n"))
	if resp := c.response(); resp.OK {
		t.Errorf("show of a path-like group id succeeded: %+v", resp)
	}
	c.send([]byte(`{"op":"hello","version":1,"id":{"any":["json"]}}` + "\n"))
	if resp := c.response(); !resp.OK || string(resp.ID) != `{"any":["json"]}` {
		t.Errorf("hello after bad lines: %+v (id %s)", resp, resp.ID)
	}

	// A line over the limit: too_large, then the agent hangs up.
	big := a.raw(t)
	line := append(bytes.Repeat([]byte("a"), ipc.MaxLine+100), '\n')
	go func() { _, _ = big.c.Write(line) }() // may fail once the agent hangs up
	big.wantError("oversized line", ipc.CodeTooLarge)
	_ = big.c.SetReadDeadline(time.Now().Add(goneTimeout))
	if _, err := big.r.ReadBytes('\n'); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("after too_large the connection should be closed, read gave %v", err)
	}

	// And the agent still serves.
	if _, err := a.client(t).Status(ctx); err != nil {
		t.Fatalf("status after the bad input: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}
