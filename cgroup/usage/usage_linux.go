package usage

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// Read reads the usage of the cgroup rel (relative to the mount).
func (r *Reader) Read(rel string) (Usage, error) {
	m, err := cgroup2.Load(rel, cgroup2.WithMountpoint(r.mount))
	if err != nil {
		return Usage{}, fmt.Errorf("usage: cgroup %s: %w", rel, err)
	}
	dir := filepath.Join(r.mount, rel)
	ctrls, err := m.Controllers()
	if errors.Is(err, fs.ErrNotExist) {
		return Usage{}, fmt.Errorf("%w: %s", ErrNotFound, rel)
	}
	if err != nil {
		return Usage{}, fmt.Errorf("usage: cgroup %s: %w", rel, err)
	}
	u := Usage{Unavailable: map[string]string{}}
	var mask cgroup2.StatMask
	want := func(name string, bit cgroup2.StatMask, file string) {
		switch {
		case name != "cpu" && !slices.Contains(ctrls, name): // cpu.stat is there without the controller
			u.Unavailable[name] = r.notEnabled(name)
		case !exists(dir, file):
			u.Unavailable[name] = file + " is missing"
		default:
			mask |= bit
		}
	}
	want("cpu", cgroup2.StatCPU, "cpu.stat")
	want("memory", cgroup2.StatMemory, "memory.current")
	want("pids", cgroup2.StatPids, "pids.current")
	want("io", cgroup2.StatIO, "io.stat")
	st, err := m.StatFiltered(mask)
	if err != nil {
		return Usage{}, fmt.Errorf("usage: cgroup %s: %w", rel, err)
	}
	if c := st.GetCPU(); mask&cgroup2.StatCPU != 0 && c != nil {
		u.CPU = &CPU{UsageUsec: c.GetUsageUsec(), UserUsec: c.GetUserUsec(), SystemUsec: c.GetSystemUsec()}
	}
	if mem := st.GetMemory(); mask&cgroup2.StatMemory != 0 && mem != nil {
		u.Memory = &Memory{Current: mem.GetUsage()}
		if exists(dir, "memory.peak") {
			peak := mem.GetMaxUsage()
			u.Memory.Peak = &peak
		}
	}
	if p := st.GetPids(); mask&cgroup2.StatPids != 0 && p != nil {
		u.Pids = &Pids{Current: p.GetCurrent(), Peak: readUint(dir, "pids.peak")}
	}
	if io := st.GetIo(); mask&cgroup2.StatIO != 0 && io != nil {
		u.IO = &IO{}
		for _, e := range io.GetUsage() {
			u.IO.ReadBytes += e.GetRbytes()
			u.IO.WriteBytes += e.GetWbytes()
		}
	}
	if len(u.Unavailable) == 0 {
		u.Unavailable = nil
	}
	return u, nil
}
