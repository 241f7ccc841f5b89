package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/orphand/orphand/agent/internal/wire"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

// conn is one client connection. Its goroutine reads a line, handles it and
// writes the response, one request at a time; a client that sends nothing
// or half a line holds up only its own goroutine.
type conn struct {
	a    *Agent
	nc   net.Conn
	peer peer
	log  *slog.Logger

	wmu sync.Mutex // serialises writes: responses and, once subscribed, events

	clock *wire.Deadline // the read deadline: idle and line limits

	sub *subscriber // set by a subscribe request; owned by the conn goroutine

	// Guarded by Agent.mu: groups registered with on=disconnect over this
	// connection and not yet ended.
	onDisconnect map[string]*group
}

// peer is who is at the other end of a connection.
type peer struct {
	caller policy.Caller
	// proc holds the connecting process, nil when the agent cannot see it
	// (another pid namespace) or it is already gone.
	proc *proctree.Process
	// sameNS is true when the peer shares the agent's pid namespace, so
	// that pid numbers in its requests mean what they mean to the agent.
	sameNS bool
}

// startConn reads the peer's credentials and serves the connection on a
// goroutine counted by conns.
func (a *Agent) startConn(nc net.Conn, conns *sync.WaitGroup) {
	accepted := proctree.BootTicks()
	conns.Go(func() {
		pc, err := a.host.peers.Read(nc, accepted)
		if err != nil {
			a.log.Warn("rejecting a connection: cannot read its peer credentials", "err", err)
			nc.Close()
			return
		}
		p := peer{caller: policy.Caller{UID: pc.UID, GID: pc.GID, Pid: pc.Pid}, proc: pc.Proc, sameNS: pc.SameNS}
		c := a.newConn(nc, p)
		if err := a.addConn(c); err != nil {
			c.write(ipc.Response{Error: err})
			c.close()
			return
		}
		c.serve()
	})
}

// newConn makes the connection of the peer p on nc.
func (a *Agent) newConn(nc net.Conn, p peer) *conn {
	c := &conn{a: a, nc: nc, peer: p, onDisconnect: map[string]*group{}}
	c.clock = wire.NewDeadline(nc, a.cfg.Conn.IdleTimeout, a.cfg.Conn.LineTimeout)
	c.log = a.log.With("uid", p.caller.UID, "pid", p.caller.Pid)
	return c
}

// addConn registers c, unless it is refused (a per-user agent's other
// users), the agent is stopping or a limit is reached.
func (a *Agent) addConn(c *conn) *ipc.Error {
	if a.cfg.User {
		if err := policy.MayConnect(c.peer.caller, a.host.uid); err != nil {
			a.limitLog.Log(c.log, slog.LevelWarn, c.peer.caller.UID, "per_user_agent",
				"connection refused: a per-user agent serves its own user only", "owner_uid", a.host.uid)
			return wireError(err)
		}
	}
	err := a.admitConn(c)
	if err != nil && err.Limit != "" {
		a.limitLog.Log(c.log, slog.LevelWarn, c.peer.caller.UID, err.Limit, "connection refused", "err", err.Message)
	}
	return err
}

// admitConn counts c against the connection limits and, if it fits, adds it.
func (a *Agent) admitConn(c *conn) *ipc.Error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.countConnLocked(c.peer.caller); err != nil {
		return err
	}
	a.conns[c] = struct{}{}
	return nil
}

// countConnLocked counts a connection of caller, to either socket the
// agent serves, against the connection limits, unless the agent is
// stopping or a limit is reached.
func (a *Agent) countConnLocked(caller policy.Caller) *ipc.Error {
	if a.stopping {
		return reqErr(ipc.CodeInternal, "the agent is stopping")
	}
	total := a.openConnsLocked()
	u := policy.Usage{Mine: a.connsByUID[caller.UID], Total: total, NotRoot: total - a.connsByUID[0]}
	if err := a.cfg.Limits.AllowConn(caller, u); err != nil {
		return wireError(err)
	}
	a.connsByUID[caller.UID]++
	return nil
}

// uncountConnLocked undoes countConnLocked when the connection ends.
func (a *Agent) uncountConnLocked(uid uint32) {
	if a.connsByUID[uid]--; a.connsByUID[uid] <= 0 {
		delete(a.connsByUID, uid)
	}
}

// openConnsLocked counts the open connections to both sockets.
func (a *Agent) openConnsLocked() int {
	n := len(a.conns)
	if a.compat != nil {
		n += a.compat.conns
	}
	return n
}

func (c *conn) serve() {
	defer c.end()
	maxLine := c.a.cfg.Conn.MaxRequest
	lr := wire.NewLineReader(c.nc, maxLine)
	lr.BeforeRead = c.clock.BeforeRead
	c.clock.Arm(false)
	for {
		line, err := lr.ReadLine()
		if errors.Is(err, wire.ErrLineTooLong) {
			c.a.limitLog.Log(c.log, slog.LevelInfo, c.peer.caller.UID, ipc.LimitMaxRequest,
				"closing a connection that sent a line over the limit", "max", maxLine)
			msg := fmt.Sprintf("request line longer than %d bytes (newline included); the connection is closed", maxLine)
			e := &ipc.Error{Code: ipc.CodeTooLarge, Message: msg, Limit: ipc.LimitMaxRequest}
			c.a.metrics.request("", e)
			c.write(ipc.Response{Error: e})
			return
		}
		if err != nil {
			// EOF, a broken connection, the agent stopping, or a limit.
			if limit := c.clock.Expired(err); limit != "" {
				c.overLimit(limit)
			}
			return
		}
		c.clock.LineDone()
		if c.sub != nil {
			continue // a subscription's connection takes no more requests; reading only detects the close
		}
		req, derr := decodeRequest(line)
		if derr == errBlankLine {
			continue
		}
		var resp ipc.Response
		if derr != nil {
			resp = ipc.Response{ID: req.ID, Error: derr}
		} else {
			resp = c.a.handle(c, req)
		}
		c.a.metrics.request(req.Op, resp.Error)
		if !c.write(resp) {
			return
		}
		if c.sub != nil && !c.sub.started {
			c.sub.start()
		}
		c.clock.Arm(c.idleExempt())
	}
}

// end runs when the connection's goroutine ends: the subscription stops,
// and groups registered with on=disconnect are killed unless the agent
// itself is stopping.
func (c *conn) end() {
	if c.sub != nil {
		c.sub.stop()
	}
	a := c.a
	a.mu.Lock()
	delete(a.conns, c)
	a.uncountConnLocked(c.peer.caller.UID)
	if !a.stopping {
		for _, g := range c.onDisconnect {
			if g.State == ipc.StateActive {
				c.log.Info("connection closed: killing its on=disconnect group", "group", g.ID)
				a.startKillLocked(g, reasonDisconnect, g.killOptions())
			}
		}
	} else if len(c.onDisconnect) > 0 {
		c.log.Info("agent stopping: on=disconnect groups of a closed connection are left alone", "groups", len(c.onDisconnect))
	}
	for id, g := range c.onDisconnect {
		g.conn = nil
		delete(c.onDisconnect, id)
	}
	a.mu.Unlock()
	c.close()
}

func (c *conn) close() {
	c.nc.Close()
	if c.peer.proc != nil {
		c.peer.proc.Close()
	}
}

// stopReading makes the connection's next read fail at once: the request
// being handled finishes and its response is written, then the goroutine
// ends.
func (c *conn) stopReading() { c.clock.Stop() }

// write sends one JSON line (a response or an event). A client that does
// not read within WriteTimeout is disconnected. It reports success.
func (c *conn) write(v any) bool {
	if r, ok := v.(ipc.Response); ok {
		r.OK = r.Error == nil
		v = r
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.log.Error("cannot encode a response", "err", err)
		b, _ = json.Marshal(ipc.Response{Error: reqErr(ipc.CodeInternal, "cannot encode the response: %v", err)})
	}
	b = append(b, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.a.cfg.WriteTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.log.Debug("write to client failed; closing the connection", "err", err)
		c.nc.Close()
		return false
	}
	return true
}

// idleExempt reports whether c waits on purpose: it streams events, or its
// close is the trigger of groups it registered.
func (c *conn) idleExempt() bool {
	if c.sub != nil {
		return true
	}
	c.a.mu.Lock()
	defer c.a.mu.Unlock()
	return len(c.onDisconnect) > 0
}

// overLimit tells the client which connection limit ended it, then the
// caller closes the connection.
func (c *conn) overLimit(limit string) {
	l := c.a.cfg.Conn
	switch limit {
	case ipc.LimitLineTimeout:
		c.a.limitLog.Log(c.log, slog.LevelInfo, c.peer.caller.UID, limit,
			"closing a connection that sent part of a line and stalled", "timeout", l.LineTimeout)
		e := limitError(limit, "a request line must arrive whole within %v of its first byte; the connection is closed", l.LineTimeout)
		c.a.metrics.request("", e) // a request cut short
		c.write(ipc.Response{Error: e})
	case ipc.LimitIdleTimeout:
		c.log.Debug("closing an idle connection", "timeout", l.IdleTimeout)
		c.write(ipc.Response{Error: limitError(limit,
			"no request for %v; the connection is closed (connect again when you need the agent)", l.IdleTimeout)})
	}
}

// limitError is the error line that ends a connection over a limit.
func limitError(limit, format string, args ...any) *ipc.Error {
	return &ipc.Error{Code: ipc.CodeLimitExceeded, Message: fmt.Sprintf(format, args...), Limit: limit}
}
