package compat

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Parent: 4242, Child: 4243, Action: ActionRegister}
	b := r.Append(nil)
	if len(b) != RecordSize {
		t.Fatalf("%d bytes", len(b))
	}
	if got := Decode(b); got != r {
		t.Fatalf("Decode = %+v, want %+v", got, r)
	}
}

func TestRecordCheck(t *testing.T) {
	tests := []struct {
		r    Record
		want error
	}{
		{Record{1, 2, ActionRegister}, nil},
		{Record{1, 2, ActionUnregister}, nil},
		{Record{0, 0, ActionPing}, nil},
		{Record{0xffffffff, 0xffffffff, ActionPing}, nil},
		{Record{0, 2, ActionRegister}, ErrBadPid},
		{Record{1, 0, ActionUnregister}, ErrBadPid},
		{Record{1, 0xffffffff, ActionRegister}, ErrBadPid}, // -1: a failed fork
		{Record{MaxPid + 1, 2, ActionRegister}, ErrBadPid},
		{Record{MaxPid, MaxPid, ActionRegister}, nil},
		{Record{1, 2, 0}, ErrUnknownAction},
		{Record{1, 2, 4}, ErrUnknownAction},
		{Record{1, 2, 0x2022706f}, ErrUnknownAction}, // `op" ` of a JSON line
	}
	for _, tt := range tests {
		err := tt.r.Check()
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%+v: Check = %v, want %v", tt.r, err, tt.want)
		}
	}
}

// TestJSONIsNeverAnAction: a JSON-lines client pointed at the compatibility
// socket by mistake (both read ORPHAND_SOCKET) cannot form a valid record:
// an action is 1, 2 or 3, so its last three bytes are zero, and no byte of
// JSON text is.
func TestJSONIsNeverAnAction(t *testing.T) {
	line := []byte(`{"op":"register","pid":1234,"name":"x"}` + "\n" + `{"op":"hello"}` + "\n")
	for off := 0; off+RecordSize <= len(line); off++ {
		if err := Decode(line[off:]).Check(); !errors.Is(err, ErrUnknownAction) {
			t.Fatalf("offset %d: %q decodes to a record the server would take (%v)", off, line[off:off+RecordSize], err)
		}
	}
}

func TestReaderEnds(t *testing.T) {
	rec := Record{10, 11, ActionPing}.Append(nil)
	tests := []struct {
		name    string
		data    []byte
		records int
		short   int // 0: a clean end
	}{
		{"empty", nil, 0, 0},
		{"one", rec, 1, 0},
		{"two", append(append([]byte{}, rec...), rec...), 2, 0},
		{"short", rec[:5], 0, 5},
		{"trailing", append(append([]byte{}, rec...), 0x01), 1, 1},
		{"eleven over", append(append([]byte{}, rec...), rec[:11]...), 1, 11},
	}
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(tt.data)
			if chunked {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src)
			n := 0
			var err error
			for {
				if _, err = r.Next(); err != nil {
					break
				}
				n++
			}
			var short *ShortError
			switch {
			case n != tt.records:
				t.Errorf("%s (chunked %v): %d records, want %d", tt.name, chunked, n, tt.records)
			case tt.short == 0 && !errors.Is(err, io.EOF):
				t.Errorf("%s (chunked %v): ended with %v, want EOF", tt.name, chunked, err)
			case tt.short > 0 && (!errors.As(err, &short) || short.N != tt.short):
				t.Errorf("%s (chunked %v): ended with %v, want %d bytes short", tt.name, chunked, err, tt.short)
			}
		}
	}
}

func TestReaderKeepsPendingAcrossErrors(t *testing.T) {
	rec := Record{7, 8, ActionRegister}.Append(nil)
	boom := errors.New("deadline")
	r := NewReader(io.MultiReader(bytes.NewReader(rec[:4]), iotest.ErrReader(boom)))
	var seen []int
	r.BeforeRead = func(pending int) { seen = append(seen, pending) }
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next = %v, want the reader's error", err)
	}
	if r.Pending() != 4 {
		t.Fatalf("Pending = %d, want 4", r.Pending())
	}
	if len(seen) < 2 || seen[0] != 0 || seen[len(seen)-1] != 4 {
		t.Fatalf("BeforeRead saw %v, want 0 first and 4 last", seen)
	}
}
