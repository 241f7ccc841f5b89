package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/orphand/orphand/ipc"
)

func readAll(lr *LineReader) ([]string, error) {
	var lines []string
	for {
		l, err := lr.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(l))
	}
}

func TestLineReader(t *testing.T) {
	tests := []struct {
		in    string
		max   int
		lines []string
		err   error
	}{
		{"a\nbb\n\nccc\n", 10, []string{"a", "bb", "", "ccc"}, io.EOF},
		{"a\nunterminated", 20, []string{"a", "unterminated"}, io.EOF},
		{"", 10, nil, io.EOF},
		{"123456789\n", 10, []string{"123456789"}, io.EOF},        // max bytes, newline included
		{"1234567890\n", 10, nil, ErrLineTooLong},                 // one more
		{"ok\n1234567890123", 10, []string{"ok"}, ErrLineTooLong}, // no newline ever
	}
	for _, tt := range tests {
		for name, r := range map[string]io.Reader{
			"whole":   strings.NewReader(tt.in),
			"onebyte": iotest.OneByteReader(strings.NewReader(tt.in)),
		} {
			lines, err := readAll(NewLineReader(r, tt.max))
			if !errors.Is(err, tt.err) || strings.Join(lines, "|") != strings.Join(tt.lines, "|") {
				t.Errorf("%q %s: lines %q err %v, want %q %v", tt.in, name, lines, err, tt.lines, tt.err)
			}
		}
	}
}

func TestLineReaderShrinksAfterABigLine(t *testing.T) {
	big := strings.Repeat("x", 60000)
	lr := NewLineReader(strings.NewReader(big+"\nsmall\n"), ipc.MaxLine)
	if l, err := lr.ReadLine(); err != nil || len(l) != len(big) {
		t.Fatalf("big line: %d %v", len(l), err)
	}
	if l, err := lr.ReadLine(); err != nil || string(l) != "small" {
		t.Fatalf("small line: %q %v", l, err)
	}
	if _, err := lr.ReadLine(); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if cap(lr.buf) > lineReaderShrink {
		t.Fatalf("buffer kept %d bytes", cap(lr.buf))
	}
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\n"), 4)
	f.Add([]byte("{\"op\":\"hello\"}\npartial"), 64)
	f.Add([]byte("\n\n\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		lines, err := readAll(NewLineReader(bytes.NewReader(in), max))
		total := 0
		for _, l := range lines {
			if len(l) >= max || strings.IndexByte(l, '\n') >= 0 {
				t.Fatalf("line %q breaks the limit %d or holds a newline", l, max)
			}
			total += len(l) + 1
		}
		if errors.Is(err, io.EOF) && total < len(in) {
			t.Fatalf("lost input: %d of %d bytes", total, len(in))
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("err %v", err)
		}
	})
}
