package family

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// serve runs one connection: peer check, hello, then data frames until the
// child disconnects, breaks a rule, or the master closes. Everything it
// reads becomes events, in order.
func (m *Master) serve(c *net.UnixConn) {
	defer m.wg.Done()
	defer m.untrack(c)

	p, err := m.peers.check(c)
	if err != nil {
		m.log.Warn("family: connection refused", "peer_pid", p.pid, "peer_uid", p.uid, "err", err)
		refuse(c, asFrameError(err, CodePermissionDenied))
		return
	}
	tr := &timedReader{c: c}
	fr := newFrameReader(tr, limits{maxKey: m.opts.MaxKeySize, maxValue: m.opts.MaxValueSize})

	// The whole hello must arrive by one deadline: trickling bytes does not
	// extend it.
	_ = c.SetReadDeadline(time.Now().Add(m.opts.HelloTimeout))
	ci, version, err := m.readHello(fr, p)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, io.EOF) {
			level = slog.LevelDebug // connected and left: a probe, not an attack
		}
		m.log.Log(context.Background(), level, "family: connection dropped before hello", "peer_pid", p.pid, "err", err)
		if fe := (*FrameError)(nil); errors.As(err, &fe) {
			refuse(c, fe)
		}
		return
	}
	w := welcome{version: version, maxKey: m.opts.MaxKeySize, maxValue: m.opts.MaxValueSize, cid: ci.CID}
	_ = c.SetWriteDeadline(time.Now().Add(m.opts.HelloTimeout))
	if _, err := c.Write(appendFrame(nil, frameWelcome, "", w.value())); err != nil {
		m.log.Warn("family: sending welcome failed", "cid", ci.CID, "err", err)
		return // no hello event yet, so the child never existed
	}
	_ = c.SetWriteDeadline(time.Time{})
	_ = c.SetReadDeadline(time.Time{})
	if !m.emit(event{kind: evHello, child: ci}) {
		return
	}
	m.log.Debug("family: child said hello", "cid", ci.CID, "name", ci.Name, "pid", ci.PID)

	err = m.readData(tr, fr, ci)
	if err != nil {
		m.log.Warn("family: child dropped", "cid", ci.CID, "name", ci.Name, "err", err)
		if fe := (*FrameError)(nil); errors.As(err, &fe) {
			refuse(c, fe)
		}
	}
	ci.Err = err
	m.emit(event{kind: evBye, child: ci})
}

// readHello reads the first frame, which must be a hello, and gives the
// child its CID.
func (m *Master) readHello(fr *frameReader, p peer) (ChildInfo, int, error) {
	f, err := fr.readFrame()
	if err != nil {
		if isTimeout(err) {
			return ChildInfo{}, 0, frameErrorf(CodeTimeout, "no hello within %s", m.opts.HelloTimeout)
		}
		return ChildInfo{}, 0, err
	}
	if f.typ != frameHello {
		return ChildInfo{}, 0, frameErrorf(CodeBadRequest, "the first frame must be hello, not %s", frameName(f.typ))
	}
	offered, err := parseHello(f.value)
	if err != nil {
		return ChildInfo{}, 0, err
	}
	if offered < 1 {
		return ChildInfo{}, 0, frameErrorf(CodeUnsupportedVersion, "hello offers version %d; this master speaks 1..%d", offered, ProtocolVersion)
	}
	name := f.key
	if name == "" {
		name = strconv.Itoa(p.pid)
	}
	// A gate, not a reservation: the record is charged when it is made.
	if m.budget.used.Load()+recordOverhead+int64(len(name)) > m.budget.limit {
		return ChildInfo{}, 0, frameErrorf(CodeLimitExceeded, "the master's memory limit (%d bytes) is spent", m.budget.limit)
	}
	ci := ChildInfo{CID: int(m.nextCID.Add(1) - 1), Name: name, PID: p.pid, Running: true}
	return ci, min(offered, ProtocolVersion), nil
}

// readData turns data frames into events until the connection ends. It
// returns nil for a clean end at a frame boundary.
func (m *Master) readData(tr *timedReader, fr *frameReader, ci ChildInfo) error {
	for {
		tr.setTimeout(m.opts.IdleTimeout)
		if _, err := fr.r.Peek(1); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				// ECONNRESET: the child closed without reading our
				// welcome; everything it sent was read first.
				return nil
			}
			if isTimeout(err) {
				return frameErrorf(CodeTimeout, "nothing sent for %s (IdleTimeout)", m.opts.IdleTimeout)
			}
			return err
		}
		tr.setTimeout(m.opts.StallTimeout)
		h, err := fr.readHeader()
		if err != nil {
			return m.frameErr(err)
		}
		if h.typ != frameSet && h.typ != framePush {
			return frameErrorf(CodeBadRequest, "%s frame after hello", frameName(h.typ))
		}
		key, err := fr.readKey(h)
		if err != nil {
			return m.frameErr(err)
		}
		cost := int64(len(key)) + h.valueLen + entryOverhead
		if !m.budget.reserve(cost) {
			return frameErrorf(CodeLimitExceeded, "a %d-byte value does not fit in the master's memory limit (%d bytes, %d in use)",
				h.valueLen, m.budget.limit, m.budget.used.Load())
		}
		// The value is read straight into the buffer that will be stored.
		v := make([]byte, h.valueLen)
		if err := fr.readValue(v); err != nil {
			m.budget.release(cost)
			return m.frameErr(err)
		}
		kind := evSet
		if h.typ == framePush {
			kind = evPush
		}
		if !m.emit(event{kind: kind, child: ci, key: key, value: v, cost: cost}) {
			m.budget.release(cost)
			return nil
		}
	}
}

// frameErr names a stall for what it is.
func (m *Master) frameErr(err error) error {
	if isTimeout(err) {
		return frameErrorf(CodeTimeout, "frame stalled for %s (StallTimeout)", m.opts.StallTimeout)
	}
	return err
}

// emit hands e to the consumer, waiting while the queue is full (so a child
// that outpaces the master blocks in its writes), unless the master closes.
func (m *Master) emit(e event) bool {
	select {
	case m.events <- e:
		return true
	case <-m.done:
		return false
	}
}

// timedReader keeps a read deadline timeout ahead of every read, so a
// timeout measures silence, not the length of a transfer. It renews the
// deadline only when less than 7/8 of the timeout is left, which spares a
// timer update on most reads: silence is caught after 7/8 of the timeout
// at the earliest.
type timedReader struct {
	c        *net.UnixConn
	timeout  time.Duration // for reads from now on; 0: none
	deadline time.Time     // the deadline set on c; zero: none
}

func (t *timedReader) setTimeout(d time.Duration) { t.timeout = d }

func (t *timedReader) Read(p []byte) (int, error) {
	switch {
	case t.timeout <= 0:
		if !t.deadline.IsZero() {
			_ = t.c.SetReadDeadline(time.Time{})
			t.deadline = time.Time{}
		}
	default:
		now := time.Now()
		left := t.deadline.Sub(now)
		if t.deadline.IsZero() || left < t.timeout*7/8 || left > t.timeout {
			t.deadline = now.Add(t.timeout)
			_ = t.c.SetReadDeadline(t.deadline)
		}
	}
	return t.c.Read(p)
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// asFrameError returns err as a *FrameError, or wraps it in one with code.
func asFrameError(err error, code string) *FrameError {
	if fe := (*FrameError)(nil); errors.As(err, &fe) {
		return fe
	}
	return &FrameError{Code: code, Msg: err.Error()}
}
