package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
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

// handler serves one op: it fills resp and returns nil, or returns the
// error to answer with.
type handler func(a *Agent, ctx context.Context, c *conn, req ipc.Request, resp *ipc.Response) error

// ops is the route table of protocol v1.
var ops = map[string]handler{
	ipc.OpHello:     (*Agent).opHello,
	ipc.OpRegister:  (*Agent).opRegister,
	ipc.OpWatch:     (*Agent).opWatch,
	ipc.OpAttach:    (*Agent).opAttach,
	ipc.OpList:      (*Agent).opList,
	ipc.OpShow:      (*Agent).opShow,
	ipc.OpKill:      (*Agent).opKill,
	ipc.OpRelease:   (*Agent).opRelease,
	ipc.OpSubscribe: (*Agent).opSubscribe,
	ipc.OpStatus:    (*Agent).opStatus,
}

const opNames = "hello, register, watch, attach, list, show, kill, release, subscribe, status"

// handle answers one decoded request.
func (a *Agent) handle(c *conn, req ipc.Request) ipc.Response {
	resp := ipc.Response{ID: req.ID}
	h := ops[req.Op]
	if h == nil {
		resp.Error = reqErr(ipc.CodeUnknownOp, "unknown op %.40q; protocol v%d has: %s", req.Op, ipc.Version, opNames)
		return resp
	}
	start := time.Now()
	if err := h(a, a.reqCtx, c, req, &resp); err != nil {
		resp = ipc.Response{ID: req.ID, Error: wireError(err)}
		c.log.Debug("request refused", "op", req.Op, "code", resp.Error.Code, "err", resp.Error.Message)
		return resp
	}
	c.log.Debug("request served", "op", req.Op, "took", time.Since(start))
	return resp
}

// reqErr makes a protocol error. Handlers return *ipc.Error for every
// failure whose code they know; wireError classifies the rest.
func reqErr(code, format string, args ...any) *ipc.Error {
	return &ipc.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// wireError turns any error from a handler into the protocol's error.
func wireError(err error) *ipc.Error {
	var (
		ie  *ipc.Error
		den *policy.Denied
		lim *policy.LimitError
	)
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.As(err, &den):
		return &ipc.Error{Code: ipc.CodePermissionDenied, Message: den.Reason}
	case errors.As(err, &lim):
		return &ipc.Error{Code: ipc.CodeLimitExceeded, Message: lim.Error(), Limit: lim.Limit}
	case errors.Is(err, os.ErrProcessDone):
		return &ipc.Error{Code: ipc.CodeNoSuchProcess, Message: err.Error()}
	case errors.Is(err, cgroup.ErrNotFound):
		return &ipc.Error{Code: ipc.CodeNotFound, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &ipc.Error{Code: ipc.CodeInternal, Message: "the agent is stopping: " + err.Error()}
	}
	return &ipc.Error{Code: ipc.CodeInternal, Message: err.Error()}
}
