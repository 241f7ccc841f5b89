package cgroup

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Discover finds this process's cgroup2 mount from /proc/self/mountinfo
// and checks it with statfs(2) (CGROUP2_SUPER_MAGIC): the mount point is
// never assumed. With no cgroup2 mount it returns a Mount whose Layout is
// LayoutNone and an error wrapping [ErrUnavailable].
func Discover() (Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Mount{Layout: LayoutNone}, fmt.Errorf("cgroup: %w (is /proc mounted?)", err)
	}
	defer f.Close()
	m, err := FindMount(f)
	if err != nil {
		return Mount{Layout: LayoutNone}, err
	}
	if m.Path == "" {
		return m, fmt.Errorf("%w: no cgroup2 file system is mounted (mount one, e.g. mount -t cgroup2 none /sys/fs/cgroup/unified)", ErrUnavailable)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(m.Path, &sfs); err != nil {
		return Mount{Layout: LayoutNone}, fmt.Errorf("%w: statfs %s: %w", ErrUnavailable, m.Path, err)
	}
	if sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		return Mount{Layout: LayoutNone}, fmt.Errorf("%w: %s is listed as cgroup2 but statfs says magic %#x", ErrUnavailable, m.Path, sfs.Type)
	}
	return m, nil
}
