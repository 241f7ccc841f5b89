package compat

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReader feeds arbitrary bytes to the record reader, whole or a byte
// at a time: it must not panic, must return exactly len/12 records, each of
// which encodes back to its 12 bytes, and must end with io.EOF or a
// *ShortError holding the len%12 bytes left over. Check must classify every
// record without panicking.
func FuzzReader(f *testing.F) {
	f.Add(Record{1234, 1235, ActionRegister}.Append(nil), false)
	f.Add(append(Record{1, 2, ActionPing}.Append(nil), 0xff), true)
	f.Add([]byte(`{"op":"hello"}`+"\n"), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, chunked bool) {
		var src io.Reader = bytes.NewReader(data)
		if chunked {
			src = iotest.OneByteReader(src)
		}
		r := NewReader(src)
		n := 0
		var err error
		for {
			var rec Record
			if rec, err = r.Next(); err != nil {
				break
			}
			if got := rec.Append(nil); !bytes.Equal(got, data[n*RecordSize:(n+1)*RecordSize]) {
				t.Fatalf("record %d re-encodes to %x, read from %x", n, got, data[n*RecordSize:(n+1)*RecordSize])
			}
			if cerr := rec.Check(); cerr != nil && !errors.Is(cerr, ErrUnknownAction) && !errors.Is(cerr, ErrBadPid) {
				t.Fatalf("Check(%+v) = %v, not one of its errors", rec, cerr)
			}
			n++
		}
		if n != len(data)/RecordSize {
			t.Fatalf("%d records from %d bytes", n, len(data))
		}
		var short *ShortError
		switch left := len(data) % RecordSize; {
		case left == 0 && !errors.Is(err, io.EOF):
			t.Fatalf("ended with %v, want EOF", err)
		case left > 0 && (!errors.As(err, &short) || short.N != left):
			t.Fatalf("ended with %v, want %d bytes short", err, left)
		}
	})
}
