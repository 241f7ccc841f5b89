package cgroup

import (
	"fmt"
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
