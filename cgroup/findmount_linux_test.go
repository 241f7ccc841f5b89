package cgroup_test

import (
	"strings"
	"testing"

	"github.com/orphand/orphand/cgroup"
)

const hybridMountinfo = `22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestFindMount(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     cgroup.Mount
	}{
		{"hybrid", hybridMountinfo, cgroup.Mount{Path: "/sys/fs/cgroup/unified", Root: "/", Layout: cgroup.LayoutHybrid}},
		{
			"unified", "25 1 0:22 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
			cgroup.Mount{Path: "/sys/fs/cgroup", Root: "/", Layout: cgroup.LayoutUnified},
		},
		{
			"none", "22 1 259:1 / / rw - ext4 /dev/root rw\n32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
			cgroup.Mount{Layout: cgroup.LayoutNone},
		},
		{
			"escaped path", `25 1 0:22 / /mnt/my\040cgroup rw - cgroup2 cgroup2 rw` + "\n",
			cgroup.Mount{Path: "/mnt/my cgroup", Root: "/", Layout: cgroup.LayoutUnified},
		},
		{
			"subtree mount first, whole later", "25 1 0:22 /sub /a rw - cgroup2 none rw\n26 1 0:22 / /b rw - cgroup2 none rw\n",
			cgroup.Mount{Path: "/b", Root: "/", Layout: cgroup.LayoutUnified},
		},
		{
			"only a subtree", "25 1 0:22 /sub /a rw - cgroup2 none rw\n",
			cgroup.Mount{Path: "/a", Root: "/sub", Layout: cgroup.LayoutUnified},
		},
		{
			"overmounted", "25 1 0:22 / /a rw - cgroup2 none rw\n26 1 0:5 / /a rw - tmpfs none rw\n",
			cgroup.Mount{Layout: cgroup.LayoutNone},
		},
		{
			"optional fields", "25 1 0:22 / /c rw shared:9 master:2 - cgroup2 cgroup2 rw\n",
			cgroup.Mount{Path: "/c", Root: "/", Layout: cgroup.LayoutUnified},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroup.FindMount(strings.NewReader(tc.in))
			if err != nil || got != tc.want {
				t.Errorf("FindMount = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := cgroup.FindMount(strings.NewReader("1 2 3\n")); err == nil {
		t.Error("FindMount accepted a malformed line")
	}
}

func FuzzFindMount(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add(`25 1 0:22 /s\134x /a\040b rw shared:1 - cgroup2 cgroup2 rw` + "\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := cgroup.FindMount(strings.NewReader(in))
		if err != nil {
			return
		}
		if (m.Path == "") != (m.Layout == cgroup.LayoutNone) {
			t.Fatalf("inconsistent mount %+v", m)
		}
	})
}
