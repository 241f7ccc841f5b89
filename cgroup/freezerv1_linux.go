package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// FreezerV1 is where a process sits in the cgroup v1 freezer hierarchy of
// a hybrid or legacy host. A task frozen there ignores even SIGKILL until
// it is thawed: cgroup v2's kill cannot reach past another hierarchy's
// freezer. The agent names it when it reports a stuck kill.
type FreezerV1 struct {
	Path  string // the cgroup, relative to the freezer hierarchy
	State string // its freezer.state: "FROZEN", "FREEZING" or "THAWED"
}

// ReadFreezerV1 returns pid's v1 freezer cgroup and its state. It returns
// the zero FreezerV1 when no v1 freezer is mounted or pid is in its root
// cgroup (which cannot be frozen).
func ReadFreezerV1(pid int) (FreezerV1, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return FreezerV1{}, err
	}
	defer f.Close()
	path, err := ParseProcCgroupV1(f, "freezer")
	if err != nil || path == "" || path == "/" {
		return FreezerV1{}, err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		return FreezerV1{}, fmt.Errorf("cgroup: read mountinfo: %w", err)
	}
	for _, m := range mounts {
		if !slices.Contains(strings.Split(m.VFSOptions, ","), "freezer") {
			continue
		}
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.Root, "/"))
		if !ok || !strings.HasPrefix(rel, "/") && rel != "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.Mountpoint, rel, "freezer.state"))
		if err != nil {
			return FreezerV1{Path: path}, nil // removed meanwhile, or not readable: the path still helps
		}
		return FreezerV1{Path: path, State: strings.TrimSpace(string(b))}, nil
	}
	return FreezerV1{Path: path}, nil
}
