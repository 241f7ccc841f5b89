package state

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// Format and Version name the file format in every header. A store written
// by a newer version is refused rather than misread.
const (
	Format  = "orphand-state"
	Version = 1
)

// Kinds of file.
const (
	KindSnapshot = "snapshot"
	KindJournal  = "journal"
)

// MaxLine bounds one line (a record with a thousand watch targets is about
// 60 KiB); a longer line is skipped as damaged.
const MaxLine = 4 << 20

// castagnoli is the checksum's table, made on first use: making it costs
// ~0.1-0.2 ms (hash/crc32 prepares its SSE4.2 tables), which every start of
// the orphand binary paid at package init — `orphand init` and `orphand
// version` included, which never checksum a record.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// Header opens every file.
type Header struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	Gen     uint64 `json:"gen"`
	Count   int    `json:"count"` // snapshot: records that follow
}

// Entry is one line: a header, a record, or a record's deletion.
type Entry struct {
	Header *Header         `json:"header,omitempty"`
	ID     string          `json:"id,omitempty"`
	Record json.RawMessage `json:"record,omitempty"`
	Delete bool            `json:"delete,omitempty"`
}

// AppendEntry appends e, encoded as one line, to buf.
func AppendEntry(buf []byte, e Entry) ([]byte, error) {
	if e.Header == nil && e.ID == "" {
		return buf, errors.New("state: an entry needs a header or an id")
	}
	if e.Record != nil && !json.Valid(e.Record) {
		return buf, fmt.Errorf("state: record %q is not valid JSON", e.ID)
	}
	// encoding/json compacts a RawMessage: no newline can reach the line.
	js, err := json.Marshal(e)
	if err != nil {
		return buf, fmt.Errorf("state: encode entry %q: %w", e.ID, err)
	}
	var sum [4]byte
	c := crc32.Checksum(js, castagnoli())
	sum[0], sum[1], sum[2], sum[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	buf = hex.AppendEncode(buf, sum[:])
	buf = append(buf, ' ')
	buf = append(buf, js...)
	return append(buf, '\n'), nil
}

// ReadStats says how a read went.
type ReadStats struct {
	Entries int   // lines decoded and passed on
	Bad     int   // lines skipped: checksum, JSON or length
	Valid   int64 // offset just past the last good line
	Torn    bool  // the data ended in the middle of a line
}

// ReadEntries decodes the lines of r and calls fn with each good one, in
// order. Damaged lines are counted and skipped. It stops at the first error
// from fn or from r (io.EOF ends it normally).
func ReadEntries(r io.Reader, fn func(Entry) error) (ReadStats, error) {
	var st ReadStats
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	for {
		line, n, complete, err := readLine(br)
		off += n
		if n > 0 && !complete && err == nil {
			st.Bad++ // over MaxLine: skipped to its newline
			continue
		}
		if len(line) > 0 && complete {
			e, derr := decodeLine(line)
			if derr != nil {
				st.Bad++
			} else {
				if ferr := fn(e); ferr != nil {
					return st, ferr
				}
				st.Entries++
				st.Valid = off
			}
		}
		if errors.Is(err, io.EOF) {
			st.Torn = n > 0 && !complete
			return st, nil
		}
		if err != nil {
			return st, err
		}
	}
}

// readLine returns the next line without its newline, the bytes consumed,
// and whether the line was complete (ended by a newline, within MaxLine).
// A line over MaxLine is consumed up to its newline and returned empty.
func readLine(br *bufio.Reader) (line []byte, n int64, complete bool, err error) {
	var acc []byte
	over := false
	for {
		chunk, err := br.ReadSlice('\n')
		n += int64(len(chunk))
		if !over {
			if len(acc)+len(chunk) > MaxLine+1 {
				over, acc = true, nil
			} else {
				acc = append(acc, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return nil, n, false, err
		case over:
			return nil, n, false, nil
		}
		return acc[:len(acc)-1], n, true, nil
	}
}

// decodeLine checks and decodes one line.
func decodeLine(line []byte) (Entry, error) {
	sumHex, js, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(sumHex) != 8 {
		return Entry{}, errors.New("state: line has no checksum")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], sumHex); err != nil {
		return Entry{}, fmt.Errorf("state: checksum: %w", err)
	}
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	if crc32.Checksum(js, castagnoli()) != want {
		return Entry{}, errors.New("state: checksum mismatch")
	}
	var e Entry
	if err := json.Unmarshal(js, &e); err != nil {
		return Entry{}, fmt.Errorf("state: decode: %w", err)
	}
	if e.Header == nil && e.ID == "" {
		return Entry{}, errors.New("state: entry has neither header nor id")
	}
	return e, nil
}
