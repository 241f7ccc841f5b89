package nspawn

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// mountEntry is the part of one /proc/self/mountinfo line this package needs.
type mountEntry struct {
	Point     string   // mount point, unescaped
	FSType    string   // e.g. "cgroup2", "cgroup"
	SuperOpts []string // per-superblock options, e.g. "rw", "name=systemd"
}

// parseMountinfo reads the proc(5) mountinfo format:
//
//	ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
//
// A malformed line is an error: the file comes from the kernel, so a line we
// cannot read means we misunderstand the format and must not guess.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			return nil, fmt.Errorf("mountinfo line %d: want \"ID PARENT DEV ROOT POINT OPTS ... - TYPE SOURCE OPTS\", got %q", n, line)
		}
		out = append(out, mountEntry{
			Point:     unescapeOctal(f[4]),
			FSType:    f[sep+1],
			SuperOpts: strings.Split(f[sep+3], ","),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of spaces, tabs, newlines
// and backslashes in mountinfo paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// cgroupMounts finds the cgroup2 mount (unified, or the "unified" one of a
// hybrid layout) and, on hybrid hosts, the named v1 hierarchy "name=systemd".
// v1 is "" when there is none.
func cgroupMounts(mounts []mountEntry) (v2, v1systemd string) {
	for _, m := range mounts {
		switch {
		case m.FSType == "cgroup2" && v2 == "":
			v2 = m.Point
		case m.FSType == "cgroup" && v1systemd == "" && slices.Contains(m.SuperOpts, "name=systemd"):
			v1systemd = m.Point
		}
	}
	return v2, v1systemd
}
