// Package usage reads what a cgroup v2 group used — CPU time, memory
// current and peak, pids current and peak, bytes read and written — for
// the agent's show and list and its groups' death events. The files are
// parsed by github.com/containerd/cgroups/v3's cgroup2 package, the
// library the design names for exactly this; pids.peak, which it does not
// read, is read here. A figure that cannot be had — its controller not
// enabled for the group, bound to cgroup v1 on a hybrid host, a file the
// kernel is too old for — is absent, with the reason, never a zero: the
// library reads a missing file as 0, so each figure's file is checked
// first.
//
// It is a package of its own so that only the agent links that library
// (and what it pulls in); orphand init, a container's PID 1, does not.
package usage

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Usage is one group's figures. A nil figure could not be read, and
// Unavailable says why, under "cpu", "memory", "pids" or "io".
type Usage struct {
	CPU         *CPU
	Memory      *Memory
	Pids        *Pids
	IO          *IO
	Unavailable map[string]string
}

// CPU is cpu.stat's usage, in microseconds.
type CPU struct{ UsageUsec, UserUsec, SystemUsec uint64 }

// Memory is memory.current and memory.peak (nil before Linux 5.19), in bytes.
type Memory struct {
	Current uint64
	Peak    *uint64
}

// Pids is pids.current and pids.peak (nil before Linux 6.13).
type Pids struct {
	Current uint64
	Peak    *uint64
}

// IO is io.stat's bytes, summed over devices.
type IO struct{ ReadBytes, WriteBytes uint64 }

// ErrNotFound is wrapped by Read when the cgroup does not exist.
var ErrNotFound = errors.New("usage: no such cgroup")

// Reader reads the usage of cgroups under one cgroup2 mount.
type Reader struct {
	mount string
	// v1 holds the controllers bound to a cgroup v1 hierarchy (hybrid
	// hosts), which cgroup v2 can never enable.
	v1 map[string]bool
}

// NewReader returns a Reader for the cgroup2 hierarchy mounted at mount.
// It reads /proc/cgroups once, to tell why a controller is missing.
func NewReader(mount string) *Reader {
	r := &Reader{mount: mount, v1: map[string]bool{}}
	if b, err := os.ReadFile("/proc/cgroups"); err == nil {
		r.v1 = parseV1Bound(string(b))
	}
	return r
}

// parseV1Bound reads /proc/cgroups (subsys_name, hierarchy, num_cgroups,
// enabled) and returns the controllers whose hierarchy is not 0, that is,
// bound to a cgroup v1 hierarchy.
func parseV1Bound(s string) map[string]bool {
	out := map[string]bool{}
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if h, err := strconv.Atoi(f[1]); err == nil && h != 0 {
			out[f[0]] = true
		}
	}
	return out
}

// v1Names are the cgroup v1 names of the v2 controllers whose names differ.
var v1Names = map[string]string{"io": "blkio"}

// notEnabled says why controller is not in a cgroup's cgroup.controllers.
func (r *Reader) notEnabled(controller string) string {
	v1 := controller
	if n, ok := v1Names[controller]; ok {
		v1 = n
	}
	if r.v1[v1] {
		return "the " + controller + " controller is bound to cgroup v1 on this host (hybrid cgroups), so cgroup v2 has no " + controller + " figures"
	}
	return "the " + controller + " controller is not enabled for this cgroup (it is not in its parent's cgroup.subtree_control)"
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// readUint reads a file holding one number, nil if it cannot.
func readUint(dir, file string) *uint64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil
	}
	return &v
}
