package proctree

import (
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	for in, want := range map[string]string{
		"sleep\x00100\x00":       "sleep 100",
		"a\nb\x00":               "a?b",
		"":                       "",
		strings.Repeat("x", 300): strings.Repeat("x", 200) + "…",
	} {
		if got := ParseCmdline([]byte(in), 200); got != want {
			t.Errorf("ParseCmdline(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ParseCmdline([]byte(strings.Repeat("y", 300)), 0); len(got) != 300 {
		t.Errorf("no limit: %d bytes", len(got))
	}
}
