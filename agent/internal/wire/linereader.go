package wire

import (
	"bytes"
	"errors"
	"io"
)

// ErrLineTooLong is returned by LineReader.ReadLine when max bytes arrived
// without a newline.
var ErrLineTooLong = errors.New("line too long")

// LineReader reads newline-terminated lines of at most max bytes, newline
// included. Unlike bufio.Reader, its buffer starts small and grows only as a
// line needs it, then shrinks back: thousands of idle connections (each
// on=disconnect group holds one open) cost a few hundred bytes each, not
// max bytes each.
type LineReader struct {
	r          io.Reader
	max        int
	buf        []byte
	start, end int   // buf[start:end] is read but not yet returned
	err        error // sticky read error, reported once the buffer is drained

	// BeforeRead, if set, is called before each read from r with the
	// number of bytes of an unfinished line already buffered: the
	// connection starts a line's deadline ([Deadline.BeforeRead]) when it
	// sees the first of them.
	BeforeRead func(pending int)
}

const (
	lineReaderMin    = 512
	lineReaderShrink = 4 << 10
)

// NewLineReader reads lines of at most max bytes, newline included, from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{r: r, max: max}
}

// ReadLine returns the next line without its newline. The slice is valid
// until the next call. At the end of input (io.EOF), an unterminated last
// line is returned as a line, then io.EOF; after any other read error (a
// deadline, a reset) an unfinished line is dropped, never served as if it
// were complete. A line longer than max gives ErrLineTooLong; the reader is
// then unusable.
func (lr *LineReader) ReadLine() ([]byte, error) {
	if lr.start == lr.end && len(lr.buf) > lineReaderShrink {
		lr.buf, lr.start, lr.end = nil, 0, 0 // the big line is gone: give the memory back
	}
	scanned := 0 // bytes after start known to hold no newline
	for {
		if i := bytes.IndexByte(lr.buf[lr.start+scanned:lr.end], '\n'); i >= 0 {
			line := lr.buf[lr.start : lr.start+scanned+i]
			lr.start += scanned + i + 1
			return line, nil
		}
		scanned = lr.end - lr.start
		if scanned >= lr.max {
			return nil, ErrLineTooLong
		}
		if lr.err != nil {
			if scanned > 0 && errors.Is(lr.err, io.EOF) {
				line := lr.buf[lr.start:lr.end]
				lr.start = lr.end
				return line, nil
			}
			return nil, lr.err
		}
		lr.fill()
	}
}

// fill reads once into the buffer, making room first.
func (lr *LineReader) fill() {
	if lr.start > 0 {
		lr.end = copy(lr.buf, lr.buf[lr.start:lr.end])
		lr.start = 0
	}
	if lr.BeforeRead != nil {
		lr.BeforeRead(lr.end)
	}
	if lr.end == len(lr.buf) {
		n := min(max(2*len(lr.buf), lineReaderMin), lr.max)
		nb := make([]byte, n)
		copy(nb, lr.buf[:lr.end])
		lr.buf = nb
	}
	n, err := lr.r.Read(lr.buf[lr.end:])
	lr.end += n
	if err != nil {
		lr.err = err
	} else if n == 0 {
		lr.err = io.ErrNoProgress // a Reader that returns 0, nil forever must not spin us
	}
}
