package family

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolVersion is the newest wire protocol version this package speaks.
const ProtocolVersion = 1

// Frame layout (docs/family-protocol.md): an 8-byte header, then the key,
// then the value.
//
//	0  type      1 byte, an ASCII letter
//	1  reserved  1 byte, 0
//	2  key len   2 bytes, big-endian
//	4  value len 4 bytes, big-endian
const headerSize = 8

// Frame types. Letters, so that a hexdump of a session reads.
const (
	frameHello   = 'H' // child → master, first frame: key = name, value = helloMagic + version
	frameWelcome = 'W' // master → child, answer to hello: version, limits, CID
	frameError   = 'E' // master → child, then close: key = code, value = message
	frameSet     = 'S' // child → master: key = value's name, last value wins
	framePush    = 'P' // child → master: key = queue's name, appended
)

// helloMagic opens the hello value so that a stray client (an HTTP request, a
// shell typing) fails on its first frame.
const helloMagic = "ofam"

// Sizes of the fixed payloads.
const (
	helloSize   = len(helloMagic) + 2 // magic, version u16
	welcomeSize = 2 + 2 + 4 + 8       // version u16, max key u16, max value u32, CID u64
	// maxControlValue bounds the value of hello, welcome and error frames,
	// whatever the data limits are.
	maxControlValue = 4 << 10
	// MaxKeyLimit is the longest key (or child name) the wire format can carry.
	MaxKeyLimit = 1<<16 - 1
	// MaxValueLimit is the largest value the wire format can carry.
	MaxValueLimit = 1<<32 - 1
)

// Codes carried in the key of an error frame.
const (
	CodeBadRequest         = "bad_request"         // not a frame of this protocol, or one out of place
	CodeUnsupportedVersion = "unsupported_version" // hello asked for no version the master speaks
	CodePermissionDenied   = "permission_denied"   // the peer's uid or ancestry is not allowed
	CodeLimitExceeded      = "limit_exceeded"      // too many connections, or the master's memory budget is spent
	CodeTooLarge           = "too_large"           // a key or value over the master's limits
	CodeTimeout            = "timeout"             // no hello in time, or a frame stalled
	CodeShuttingDown       = "shutting_down"       // the master is closing
)

// FrameError is a violation of the wire protocol found while decoding. Code
// is one of the Code… constants, the one the master sends back.
type FrameError struct {
	Code string
	Msg  string
}

func (e *FrameError) Error() string { return "family: " + e.Code + ": " + e.Msg }

func frameErrorf(code, format string, args ...any) *FrameError {
	return &FrameError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// header is a decoded frame header.
type header struct {
	typ      byte
	keyLen   int
	valueLen int64
}

// limits bounds what a frameReader accepts for data frames.
type limits struct {
	maxKey   int
	maxValue int64
}

// frameReader decodes frames from a stream. A value is read straight into
// a buffer the caller sized from the header (or into a caller-owned
// io.Writer), so a large value is never held twice.
type frameReader struct {
	r   *bufio.Reader
	lim limits
	buf [headerSize]byte
}

// readBuffer is the frameReader's buffer size. Small: headers, keys and
// small values come through it, many per read, while most of a larger
// value goes from the socket straight into its own buffer (bufio reads
// directly into requests larger than its buffer), copied only once.
const readBuffer = 8 << 10

func newFrameReader(r io.Reader, lim limits) *frameReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, readBuffer)
	}
	return &frameReader{r: br, lim: lim}
}

// readHeader reads and checks one header. It returns io.EOF only when the
// stream ends cleanly before the first byte of a frame.
func (fr *frameReader) readHeader() (header, error) {
	if _, err := io.ReadFull(fr.r, fr.buf[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return header{}, fmt.Errorf("family: stream ended inside a frame header: %w", err)
		}
		return header{}, err
	}
	h := header{
		typ:      fr.buf[0],
		keyLen:   int(binary.BigEndian.Uint16(fr.buf[2:4])),
		valueLen: int64(binary.BigEndian.Uint32(fr.buf[4:8])),
	}
	if fr.buf[1] != 0 {
		return h, frameErrorf(CodeBadRequest, "reserved header byte is %#x, want 0", fr.buf[1])
	}
	switch h.typ {
	case frameSet, framePush:
		if h.keyLen > fr.lim.maxKey {
			return h, frameErrorf(CodeTooLarge, "key of %d bytes, the limit is %d", h.keyLen, fr.lim.maxKey)
		}
		if h.valueLen > fr.lim.maxValue {
			return h, frameErrorf(CodeTooLarge, "value of %d bytes, the limit is %d", h.valueLen, fr.lim.maxValue)
		}
	case frameHello, frameWelcome, frameError:
		if h.keyLen > fr.lim.maxKey {
			return h, frameErrorf(CodeTooLarge, "%s key of %d bytes, the limit is %d", frameName(h.typ), h.keyLen, fr.lim.maxKey)
		}
		if h.valueLen > maxControlValue {
			return h, frameErrorf(CodeBadRequest, "%s value of %d bytes, the limit is %d", frameName(h.typ), h.valueLen, maxControlValue)
		}
	default:
		return h, frameErrorf(CodeBadRequest, "unknown frame type %#x", h.typ)
	}
	return h, nil
}

// readKey reads the key that follows header h.
func (fr *frameReader) readKey(h header) (string, error) {
	if h.keyLen == 0 {
		return "", nil
	}
	k := make([]byte, h.keyLen)
	if _, err := io.ReadFull(fr.r, k); err != nil {
		return "", midFrame(err)
	}
	return string(k), nil
}

// readValue fills dst, which the caller sized to the header's value length.
// bufio hands reads of at least its buffer size straight to the socket, so
// a large value is copied once, from the kernel into dst.
func (fr *frameReader) readValue(dst []byte) error {
	if _, err := io.ReadFull(fr.r, dst); err != nil {
		return midFrame(err)
	}
	return nil
}

// midFrame turns an end of stream inside a frame into an error that says so.
func midFrame(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("family: stream ended inside a frame: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// frame is a whole decoded frame, for control frames and tests.
type frame struct {
	typ   byte
	key   string
	value []byte
}

// readFrame reads one whole frame, allocating its value.
func (fr *frameReader) readFrame() (frame, error) {
	h, err := fr.readHeader()
	if err != nil {
		return frame{}, err
	}
	key, err := fr.readKey(h)
	if err != nil {
		return frame{}, err
	}
	v := make([]byte, h.valueLen)
	if err := fr.readValue(v); err != nil {
		return frame{}, err
	}
	return frame{typ: h.typ, key: key, value: v}, nil
}

// appendHeader appends a frame header to dst.
func appendHeader(dst []byte, typ byte, keyLen int, valueLen int64) []byte {
	dst = append(dst, typ, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(keyLen))
	return binary.BigEndian.AppendUint32(dst, uint32(valueLen))
}

// appendFrame appends a whole frame to dst (for small frames; data frames
// are written with writev to avoid copying the value).
func appendFrame(dst []byte, typ byte, key string, value []byte) []byte {
	dst = appendHeader(dst, typ, len(key), int64(len(value)))
	dst = append(dst, key...)
	return append(dst, value...)
}

// helloValue is the value of a hello frame offering version v.
func helloValue(v int) []byte {
	return binary.BigEndian.AppendUint16([]byte(helloMagic), uint16(v))
}

// parseHello returns the highest version a hello value offers. Bytes past
// the version are reserved for later versions and ignored.
func parseHello(v []byte) (int, error) {
	if len(v) < helloSize || string(v[:len(helloMagic)]) != helloMagic {
		return 0, frameErrorf(CodeBadRequest, "hello value does not start with %q and a version", helloMagic)
	}
	return int(binary.BigEndian.Uint16(v[len(helloMagic):])), nil
}

// welcome is the master's answer to a hello.
type welcome struct {
	version  int
	maxKey   int
	maxValue int64
	cid      int
}

func (w welcome) value() []byte {
	b := make([]byte, 0, welcomeSize)
	b = binary.BigEndian.AppendUint16(b, uint16(w.version))
	b = binary.BigEndian.AppendUint16(b, uint16(w.maxKey))
	b = binary.BigEndian.AppendUint32(b, uint32(w.maxValue))
	return binary.BigEndian.AppendUint64(b, uint64(w.cid))
}

func parseWelcome(v []byte) (welcome, error) {
	if len(v) < welcomeSize {
		return welcome{}, frameErrorf(CodeBadRequest, "welcome value of %d bytes, want %d", len(v), welcomeSize)
	}
	cid := binary.BigEndian.Uint64(v[8:16])
	if cid > 1<<62 {
		return welcome{}, frameErrorf(CodeBadRequest, "welcome carries CID %d", cid)
	}
	return welcome{
		version:  int(binary.BigEndian.Uint16(v[0:2])),
		maxKey:   int(binary.BigEndian.Uint16(v[2:4])),
		maxValue: int64(binary.BigEndian.Uint32(v[4:8])),
		cid:      int(cid),
	}, nil
}

func frameName(t byte) string {
	switch t {
	case frameHello:
		return "hello"
	case frameWelcome:
		return "welcome"
	case frameError:
		return "error"
	case frameSet:
		return "set"
	case framePush:
		return "push"
	}
	return fmt.Sprintf("frame %#x", t)
}
