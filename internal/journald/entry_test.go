package journald

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestFieldName(t *testing.T) {
	for _, c := range []struct{ prefix, key, want string }{
		{"ORPHAND_", "group", "ORPHAND_GROUP"},
		{"ORPHAND_", "spawner_pid", "ORPHAND_SPAWNER_PID"},
		{"ORPHAND_", "kill.ms", "ORPHAND_KILL_MS"},
		{"ORPHAND_", "", "ORPHAND_FIELD"},
		{"", "_SYSTEMD_UNIT", "SYSTEMD_UNIT"}, // trusted fields cannot be forged
		{"", "9lives", "LIVES"},
		{"", "é", "FIELD"},
		{"", "__", "FIELD"},
		{"P_", strings.Repeat("a", 100), "P_" + strings.Repeat("A", 62)},
	} {
		if got := FieldName(c.prefix, c.key); got != c.want {
			t.Errorf("FieldName(%q, %q) = %q, want %q", c.prefix, c.key, got, c.want)
		}
	}
}

func TestAppendField(t *testing.T) {
	if got := string(AppendField(nil, "A", "b=c")); got != "A=b=c\n" {
		t.Errorf("plain: %q", got)
	}
	got := AppendField(nil, "A", "x\ny")
	want := append(binary.LittleEndian.AppendUint64([]byte("A\n"), 3), "x\ny\n"...)
	if string(got) != string(want) {
		t.Errorf("binary: %q, want %q", got, want)
	}
}

// Any key and value survive the trip: the field name is valid, and the
// value comes back as it went, whatever bytes it holds.
func FuzzField(f *testing.F) {
	f.Add("group", "5bf9a55bc3d7")
	f.Add("err", "a\nb")
	f.Add("_X=", "\x00\n=")
	f.Fuzz(func(t *testing.T, key, value string) {
		name := FieldName("P_", key)
		if len(name) > maxFieldName || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" || name[0] == '_' {
			t.Fatalf("FieldName(%q) = %q: not a valid journal field name", key, name)
		}
		fields, err := parseEntry(AppendField(nil, name, value))
		if err != nil {
			t.Fatal(err)
		}
		if len(fields[name]) != 1 || fields[name][0] != value {
			t.Fatalf("value %q came back as %q", value, fields[name])
		}
	})
}

// parseEntry decodes the native protocol as journald does.
func parseEntry(b []byte) (map[string][]string, error) {
	out := map[string][]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("field without a newline")
		}
		if eq := bytes.IndexByte(b[:nl], '='); eq >= 0 {
			out[string(b[:eq])] = append(out[string(b[:eq])], string(b[eq+1:nl]))
			b = b[nl+1:]
			continue
		}
		name := string(b[:nl])
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("field %s: no length", name)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, fmt.Errorf("field %s: length %d does not fit", name, n)
		}
		out[name] = append(out[name], string(b[:n]))
		b = b[n+1:]
	}
	return out, nil
}
