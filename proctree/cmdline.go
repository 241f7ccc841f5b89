package proctree

import (
	"bytes"
	"strings"
)

// ParseCmdline turns the content of /proc/<pid>/cmdline (arguments ended
// by NULs) into one printable line: arguments separated by spaces, control
// characters as '?', cut to max bytes with "…" (max <= 0: no cut).
func ParseCmdline(raw []byte, max int) string {
	raw = bytes.TrimRight(raw, "\x00")
	s := strings.Map(func(r rune) rune {
		switch {
		case r == 0:
			return ' '
		case r < ' ' || r == 0x7f:
			return '?'
		}
		return r
	}, string(raw))
	if max > 0 && len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
