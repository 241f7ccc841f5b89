package nspawn

import (
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

const hybridMountinfo = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 22 0:50 / /mnt/with\040space rw - tmpfs tmpfs rw
`

func TestCgroupMounts(t *testing.T) {
	mounts, err := mountinfo.GetMountsFromReader(strings.NewReader(hybridMountinfo), nil)
	if err != nil {
		t.Fatal(err)
	}
	v2, v1 := cgroupMounts(mounts)
	if v2 != "/sys/fs/cgroup/unified" || v1 != "/sys/fs/cgroup/systemd" {
		t.Errorf("cgroupMounts = %q, %q", v2, v1)
	}

	unified := "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	mounts, err = mountinfo.GetMountsFromReader(strings.NewReader(unified), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v2, v1 := cgroupMounts(mounts); v2 != "/sys/fs/cgroup" || v1 != "" {
		t.Errorf("pure v2: cgroupMounts = %q, %q", v2, v1)
	}
}
