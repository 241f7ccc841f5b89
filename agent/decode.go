package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orphand/orphand/ipc"
)

// errBlankLine marks a line with nothing but white space: skipped silently,
// so that a human typing into socat can press enter.
var errBlankLine = &ipc.Error{Code: ipc.CodeBadRequest, Message: "blank line"}

// decodeRequest parses one request line. On failure it still returns the
// request's id when one could be read, so that the error response echoes
// it. Unknown fields are ignored (the protocol grows by adding fields).
func decodeRequest(line []byte) (ipc.Request, *ipc.Error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return ipc.Request{}, errBlankLine
	}
	var req ipc.Request
	if err := json.Unmarshal(line, &req); err != nil {
		var idOnly struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(line, &idOnly) == nil {
			req = ipc.Request{ID: idOnly.ID}
		} else {
			req = ipc.Request{}
		}
		return req, &ipc.Error{Code: ipc.CodeBadRequest, Message: "invalid request: " + jsonProblem(err) +
			`; send one JSON object per line, such as {"op":"hello","id":1}`}
	}
	if bytes.Equal(req.ID, []byte("null")) {
		req.ID = nil
	}
	if req.Op == "" {
		return req, &ipc.Error{Code: ipc.CodeBadRequest, Message: `request has no "op"; send one JSON object per line, such as {"op":"hello","id":1}`}
	}
	return req, checkPids(req)
}

// pidMax is the kernel's PID_MAX_LIMIT on 64-bit: no pid is larger.
const pidMax = 1 << 22

// checkPids refuses pid numbers no process can have. The kernel reads a
// pid as a 32-bit int, so a larger number would alias a small one (2^32+1
// is pid 1 to pidfd_open): such numbers never reach a system call.
func checkPids(req ipc.Request) *ipc.Error {
	bad := func(pid int) bool { return pid < 0 || pid > pidMax }
	if bad(req.Pid) {
		return &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("pid %d is not a process id (0 < pid <= %d)", req.Pid, pidMax)}
	}
	for _, pid := range req.Kill {
		if bad(pid) {
			return &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf(`"kill" lists %d, which is not a process id (0 < pid <= %d)`, pid, pidMax)}
		}
	}
	return nil
}

// jsonProblem phrases a decoding error without echoing hostile input at
// length.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "a request must be a JSON object, not " + typ.Value
		}
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	return msg
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "uint32":
		return "an integer"
	case "slice":
		return "a list"
	case "ptr":
		return "a number"
	}
	return "a " + k
}
