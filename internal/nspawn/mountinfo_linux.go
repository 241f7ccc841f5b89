package nspawn

import (
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// cgroupMounts finds the cgroup2 mount (unified, or the "unified" one of a
// hybrid layout) and, on hybrid hosts, the named v1 hierarchy "name=systemd".
// v1 is "" when there is none. The mounts are /proc/self/mountinfo's, as
// github.com/moby/sys/mountinfo parses them.
func cgroupMounts(mounts []*mountinfo.Info) (v2, v1systemd string) {
	for _, m := range mounts {
		switch {
		case m.FSType == "cgroup2" && v2 == "":
			v2 = m.Mountpoint
		case m.FSType == "cgroup" && v1systemd == "" && slices.Contains(strings.Split(m.VFSOptions, ","), "name=systemd"):
			v1systemd = m.Mountpoint
		}
	}
	return v2, v1systemd
}
