package family

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	lim := limits{maxKey: 16, maxValue: 1 << 20}
	var stream []byte
	stream = appendFrame(stream, frameHello, "worker-1", helloValue(1))
	stream = appendFrame(stream, frameSet, "k", []byte("value"))
	stream = appendFrame(stream, framePush, "", nil)
	big := bytes.Repeat([]byte{0xab}, 300<<10) // larger than the bufio buffer
	stream = appendFrame(stream, frameSet, "big", big)

	fr := newFrameReader(bytes.NewReader(stream), lim)
	want := []frame{
		{frameHello, "worker-1", helloValue(1)},
		{frameSet, "k", []byte("value")},
		{framePush, "", []byte{}},
		{frameSet, "big", big},
	}
	for i, w := range want {
		got, err := fr.readFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.typ != w.typ || got.key != w.key || !bytes.Equal(got.value, w.value) {
			t.Fatalf("frame %d: got %c %q (%d bytes), want %c %q (%d bytes)", i, got.typ, got.key, len(got.value), w.typ, w.key, len(w.value))
		}
	}
	if _, err := fr.readFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// TestFrameBytes pins the byte layout documented in docs/family-protocol.md.
func TestFrameBytes(t *testing.T) {
	got := appendFrame(nil, frameHello, "w1", helloValue(1))
	want := []byte{'H', 0, 0, 2, 0, 0, 0, 6, 'w', '1', 'o', 'f', 'a', 'm', 0, 1}
	if !bytes.Equal(got, want) {
		t.Errorf("hello = % x, want % x", got, want)
	}
	got = appendFrame(nil, frameSet, "n", []byte("42"))
	want = []byte{'S', 0, 0, 1, 0, 0, 0, 2, 'n', '4', '2'}
	if !bytes.Equal(got, want) {
		t.Errorf("set = % x, want % x", got, want)
	}
	w := welcome{version: 1, maxKey: 4096, maxValue: 64 << 20, cid: 3}
	got = appendFrame(nil, frameWelcome, "", w.value())
	want = []byte{'W', 0, 0, 0, 0, 0, 0, 16, 0, 1, 0x10, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}
	if !bytes.Equal(got, want) {
		t.Errorf("welcome = % x, want % x", got, want)
	}
	back, err := parseWelcome(w.value())
	if err != nil || back != w {
		t.Errorf("parseWelcome = %+v, %v; want %+v", back, err, w)
	}
}

func TestFrameErrors(t *testing.T) {
	lim := limits{maxKey: 8, maxValue: 100}
	cases := []struct {
		name  string
		input []byte
		code  string // "" means a non-protocol error (truncation)
	}{
		{"unknown type", []byte{'X', 0, 0, 0, 0, 0, 0, 0}, CodeBadRequest},
		{"reserved byte", []byte{'S', 1, 0, 0, 0, 0, 0, 0}, CodeBadRequest},
		{"key too long", []byte{'S', 0, 0, 9, 0, 0, 0, 0}, CodeTooLarge},
		{"value too large", []byte{'P', 0, 0, 1, 0, 0, 0, 101}, CodeTooLarge},
		{"control value too large", []byte{'H', 0, 0, 0, 0, 0, 0x10, 1}, CodeBadRequest},
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), CodeBadRequest},
		{"half a header", []byte{'S', 0, 0}, ""},
		{"half a key", []byte{'S', 0, 0, 4, 0, 0, 0, 0, 'a'}, ""},
		{"half a value", []byte{'S', 0, 0, 0, 0, 0, 0, 4, 'a', 'b'}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newFrameReader(bytes.NewReader(c.input), lim).readFrame()
			if err == nil {
				t.Fatal("no error")
			}
			var fe *FrameError
			switch {
			case c.code == "" && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Fatalf("err = %v, want an unexpected EOF", err)
			case c.code != "" && (!errors.As(err, &fe) || fe.Code != c.code):
				t.Fatalf("err = %v, want code %s", err, c.code)
			}
		})
	}
}

func TestParseHello(t *testing.T) {
	if v, err := parseHello(helloValue(1)); err != nil || v != 1 {
		t.Errorf("parseHello(v1) = %d, %v", v, err)
	}
	if v, err := parseHello(append(helloValue(9), "future"...)); err != nil || v != 9 {
		t.Errorf("parseHello(v9 + extra) = %d, %v", v, err)
	}
	for _, bad := range []string{"", "ofam", "OFAM\x00\x01", "xxxx\x00\x01"} {
		if _, err := parseHello([]byte(bad)); err == nil {
			t.Errorf("parseHello(%q) succeeded", bad)
		}
	}
}

// FuzzFrameReader feeds arbitrary streams to the decoder: it must never
// panic, never accept a key or value over its limits, and whatever it
// accepts must encode back to the bytes it came from.
func FuzzFrameReader(f *testing.F) {
	f.Add(appendFrame(nil, frameHello, "w", helloValue(1)))
	f.Add(appendFrame(appendFrame(nil, frameSet, "k", []byte("v")), framePush, "q", []byte("x")))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{'S', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'S', 0, 0, 1, 0, 0, 0, 5, 'k', 'a'})
	lim := limits{maxKey: 64, maxValue: 1 << 10}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFrameReader(bytes.NewReader(in), lim)
		var out []byte
		for range 64 {
			fm, err := fr.readFrame()
			if err != nil {
				break
			}
			if len(fm.key) > lim.maxKey || int64(len(fm.value)) > max(lim.maxValue, maxControlValue) {
				t.Fatalf("accepted %s frame with %d-byte key and %d-byte value over the limits", frameName(fm.typ), len(fm.key), len(fm.value))
			}
			if !strings.ContainsRune("HWESP", rune(fm.typ)) {
				t.Fatalf("accepted unknown frame type %#x", fm.typ)
			}
			out = appendFrame(out, fm.typ, fm.key, fm.value)
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("re-encoding the accepted frames does not give back the input's prefix")
		}
		if fm, err := newFrameReader(bytes.NewReader(in), lim).readFrame(); err == nil && fm.typ == frameHello {
			_, _ = parseHello(fm.value)
		}
		if fm, err := newFrameReader(bytes.NewReader(in), lim).readFrame(); err == nil && fm.typ == frameWelcome {
			_, _ = parseWelcome(fm.value)
		}
	})
}
