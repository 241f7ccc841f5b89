package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Layouts of the cgroup hierarchies on a host.
const (
	// LayoutUnified: only cgroup v2 is mounted (usually at /sys/fs/cgroup).
	LayoutUnified = "unified"
	// LayoutHybrid: cgroup v1 controllers are mounted next to a cgroup v2
	// hierarchy without controllers (usually at /sys/fs/cgroup/unified).
	LayoutHybrid = "hybrid"
	// LayoutNone: no cgroup v2 hierarchy is mounted.
	LayoutNone = "none"
)

// Mount is the cgroup2 hierarchy as this process sees it.
type Mount struct {
	// Path is where the cgroup2 file system is mounted.
	Path string
	// Root is the directory of the hierarchy the mount shows, as seen from
	// this process's cgroup namespace: "/" unless only a subtree is mounted.
	// Paths in /proc/<pid>/cgroup are relative to the namespace, so a path
	// relative to the mount is that path with Root cut off.
	Root string
	// Layout is LayoutUnified, LayoutHybrid or LayoutNone.
	Layout string
}

// mountEntry is one line of /proc/self/mountinfo, reduced to what
// discovery needs.
type mountEntry struct {
	root, point, fstype string
}

// FindMount reads /proc/self/mountinfo (proc(5)) from r and picks the cgroup2
// mount: the first one, in mount order, that shows the whole hierarchy
// (root "/"), else the first one at all. A mount point mounted over later
// counts as its last mount. With no cgroup2 mount it returns a Mount whose
// Layout is LayoutNone and no error.
func FindMount(r io.Reader) (Mount, error) {
	var order []string
	top := map[string]mountEntry{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		e, err := parseMountLine(sc.Text())
		if err != nil {
			return Mount{}, err
		}
		if _, seen := top[e.point]; !seen {
			order = append(order, e.point)
		}
		top[e.point] = e
	}
	if err := sc.Err(); err != nil {
		return Mount{}, fmt.Errorf("cgroup: read mountinfo: %w", err)
	}
	var v2 []mountEntry
	v1 := false
	for _, p := range order {
		switch e := top[p]; e.fstype {
		case "cgroup2":
			v2 = append(v2, e)
		case "cgroup":
			v1 = true
		}
	}
	if len(v2) == 0 {
		return Mount{Layout: LayoutNone}, nil
	}
	pick := v2[0]
	for _, e := range v2 {
		if e.root == "/" {
			pick = e
			break
		}
	}
	m := Mount{Path: pick.point, Root: pick.root, Layout: LayoutUnified}
	if v1 {
		m.Layout = LayoutHybrid
	}
	return m, nil
}

// parseMountLine parses "id parent maj:min root point opts [optional...] -
// fstype source superopts".
func parseMountLine(line string) (mountEntry, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || sep+1 >= len(f) {
		return mountEntry{}, fmt.Errorf("cgroup: malformed mountinfo line %q", truncate(line))
	}
	return mountEntry{root: unescapeOctal(f[3]), point: unescapeOctal(f[4]), fstype: f[sep+1]}, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of space, tab, newline
// and backslash in mountinfo paths.
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

// Rel converts a cgroup path as /proc/<pid>/cgroup shows it into a path
// relative to the mount. It fails when the path lies outside the part of
// the hierarchy the mount shows.
func (m Mount) Rel(nsPath string) (string, error) {
	if m.Root == "" || m.Root == "/" {
		return nsPath, nil
	}
	if nsPath == m.Root {
		return "/", nil
	}
	if rest, ok := strings.CutPrefix(nsPath, m.Root+"/"); ok {
		return "/" + rest, nil
	}
	return "", fmt.Errorf("cgroup: %q is outside the cgroup2 mount at %s (which shows %s)", truncate(nsPath), m.Path, m.Root)
}
