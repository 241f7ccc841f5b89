package cgroup

import (
	"fmt"
	"io"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// FindMount reads /proc/self/mountinfo (proc(5)) from r and picks the cgroup2
// mount: the first one, in mount order, that shows the whole hierarchy
// (root "/"), else the first one at all. A mount point mounted over later
// counts as its last mount. With no cgroup2 mount it returns a Mount whose
// Layout is LayoutNone and no error. The lines are parsed by
// github.com/moby/sys/mountinfo, as runc and containerd do.
func FindMount(r io.Reader) (Mount, error) {
	mounts, err := mountinfo.GetMountsFromReader(r, nil)
	if err != nil {
		return Mount{}, fmt.Errorf("cgroup: read mountinfo: %w", err)
	}
	var order []string
	top := map[string]*mountinfo.Info{}
	for _, e := range mounts {
		if !strings.HasPrefix(e.Mountpoint, "/") {
			// The library splits on single spaces and takes an empty
			// field for a path; the kernel always writes an absolute one.
			return Mount{}, fmt.Errorf("cgroup: malformed mountinfo: mount point %q is not an absolute path", truncate(e.Mountpoint))
		}
		if _, seen := top[e.Mountpoint]; !seen {
			order = append(order, e.Mountpoint)
		}
		top[e.Mountpoint] = e
	}
	var v2 []*mountinfo.Info
	v1 := false
	for _, p := range order {
		switch e := top[p]; e.FSType {
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
		if e.Root == "/" {
			pick = e
			break
		}
	}
	m := Mount{Path: pick.Mountpoint, Root: pick.Root, Layout: LayoutUnified}
	if v1 {
		m.Layout = LayoutHybrid
	}
	return m, nil
}
