package agent

import (
	"context"
	"time"

	"github.com/orphand/orphand/ipc"
)

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
