package security

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// testFrames: malformed frames are answered with an error and the
// connection goes on; an oversized one is answered with too_large and the
// connection closed; nothing wedges the agent.
func testFrames(t *testing.T, a *agent, keep func(...*proc)) {
	u := a.as(t, attacker)
	mine := sleeper(t, attacker)
	pids := make([]string, 9000)
	for i := range pids {
		pids[i] = strconv.Itoa(100000 + i)
	}
	bad, unknown := ipc.CodeBadRequest, ipc.CodeUnknownOp
	frames := []struct{ what, line, code string }{
		{"not JSON", "this is not JSON", bad},
		{"binary", "\x00\xff\xfe\x01{]", bad},
		{"NUL inside", `{"op":"hello"` + "\x00" + `}`, bad},
		{"invalid UTF-8 in a string", `{"op":"he` + "\xff\xfe" + `llo"}`, unknown},
		{"a JSON string", `"hello"`, bad},
		{"a JSON list", `[{"op":"hello"}]`, bad},
		{"null", `null`, bad},
		{"a number", `42`, bad},
		{"nesting past the decoder's depth", `{"op":"hello","id":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, bad},
		{"op of the wrong type", `{"op":1}`, bad},
		{"a pid beyond float precision", `{"op":"register","pid":1e400}`, bad},
		{"a fractional pid", `{"op":"register","pid":1.5}`, bad},
		{"a pid as a string", `{"op":"register","pid":"1"}`, bad},
		{"kill not a list", `{"op":"watch","pid":1,"kill":{"1":1}}`, bad},
		{"grace out of range", `{"op":"register","grace_ms":99999999999999}`, bad},
		{"grace negative", `{"op":"kill","group":"x","grace_ms":-5}`, ipc.CodeNotFound},
		{"a duplicate op: the last wins", `{"op":"register","op":"kill"}`, bad},
		{"an op of 4 KiB", `{"op":"` + strings.Repeat("x", 4096) + `"}`, unknown},
		{"9000 targets", `{"op":"watch","pid":` + strconv.Itoa(mine.Pid()) + `,"kill":[` + strings.Join(pids, ",") + `]}`, ipc.CodeLimitExceeded},
	}
	for _, f := range frames {
		u.send([]byte(f.line + "\n"))
		r := u.response()
		if r.OK || r.Error == nil || r.Error.Code != f.code {
			t.Errorf("%s: ok=%v error=%+v, want %s", f.what, r.OK, r.Error, f.code)
		}
		if f.code == ipc.CodeLimitExceeded && r.Error != nil && r.Error.Limit != ipc.LimitTargetsPerWatch {
			t.Errorf("%s: limit %q, want %s", f.what, r.Error.Limit, ipc.LimitTargetsPerWatch)
		}
	}
	// An id of any JSON, large, comes back verbatim.
	id := `{"a":["` + strings.Repeat("z", 60000) + `"]}`
	u.send([]byte(`{"op":"hello","id":` + id + "}\n"))
	if r := u.response(); !r.OK || !bytes.Equal(r.ID, []byte(id)) {
		t.Errorf("a big id: ok=%v, id %d bytes", r.OK, len(r.ID))
	}
	u.ok(ipc.Request{Op: ipc.OpHello}) // still served

	// Over the size limit: too_large, and the connection is closed.
	big := a.as(t, attacker)
	big.send(bytes.Repeat([]byte("a"), ipc.MaxLine+1))
	r := big.response()
	if r.OK || r.Error == nil || r.Error.Code != ipc.CodeTooLarge {
		t.Errorf("an oversized line: %+v", r.Error)
	}
	big.hungUp()
	// So is a huge valid request.
	huge := a.as(t, attacker)
	req, _ := json.Marshal(ipc.Request{Op: ipc.OpList, Name: strings.Repeat("n", ipc.MaxLine)})
	huge.send(append(req, '\n'))
	if r := huge.response(); r.Error == nil || r.Error.Code != ipc.CodeTooLarge {
		t.Errorf("a huge valid request: %+v", r.Error)
	}
	huge.hungUp()
	u.ok(ipc.Request{Op: ipc.OpStatus})
}

// testConnectionFlood: thousands of connections from one uid stop at its
// quota and do not keep another uid from registering and killing; a
// second flooding uid stops at the users' share of the total, and root
// can still connect and act; when the floods end, every connection is
// gone from the agent.
func testConnectionFlood(t *testing.T, a *agent, keep func(...*proc)) {
	before := a.status(t).Connections
	f1 := a.flood(t, attacker, 3000)
	perUID := policy.DefaultLimits().ConnsPerUID
	if f1.res.Accepted != perUID || f1.res.Refused[ipc.LimitConnsPerUID] != 3000-perUID {
		t.Errorf("uid %d flood: %+v, want %d served and the rest refused with %s", attacker, f1.res, perUID, ipc.LimitConnsPerUID)
	}
	v := a.as(t, victim)
	p := sleeper(t, victim)
	g := v.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Pid()}).Group
	v.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	p.waitExit(t, "killed by its owner during a flood")

	// A second user fills the users' share of the total (2100 - 64).
	f2 := a.flood(t, third, 2000)
	if f2.res.Accepted == 0 || f2.res.Refused[ipc.LimitConnsTotal] == 0 || f2.res.Accepted+f2.res.Refused[ipc.LimitConnsTotal] != 2000 {
		t.Errorf("uid %d flood: %+v, want some served and the rest refused with %s", third, f2.res, ipc.LimitConnsTotal)
	}
	late := a.as(t, victim)
	if r := late.response(); r.Error == nil || r.Error.Limit != ipc.LimitConnsTotal {
		t.Errorf("a user connecting once the users' share is full: %+v", r.Error)
	}
	// Root still can: the reserve.
	q := sleeper(t, victim)
	g = v.ok(ipc.Request{Op: ipc.OpRegister, Pid: q.Pid()}).Group // an open connection keeps working
	root := a.as(t, 0)
	root.ok(ipc.Request{Op: ipc.OpShow, Group: g.ID})
	root.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	q.waitExit(t, "killed by root while the users' connections are full")

	f1.release()
	f2.release()
	deadline := newDeadline()
	for a.status(t).Connections > before+2 { // v and root's helper stay
		deadline.check(t, "the flood's connections to close")
	}
	v.ok(ipc.Request{Op: ipc.OpHello})
}
