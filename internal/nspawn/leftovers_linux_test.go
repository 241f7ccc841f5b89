package nspawn

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orphand/orphand/proctree"
)

// hostState lists what nspawn could leave on the host outside our groups
// and control directories: machine state and volatile-root temp dirs.
func hostState() []string {
	var out []string
	for _, pat := range []string{"/run/systemd/nspawn/*", "/run/systemd/nspawn/*/*", "/run/systemd/machines/*", "/var/lib/machines/*", "/tmp/nspawn-*", "/var/tmp/nspawn-*"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	slices.Sort(out)
	return out
}

// leftovers returns everything runs of process pid left behind: groups,
// control directories, live processes in such groups or with such a machine
// name, and mounts in our namespace. Zombies waiting for the host's init to
// reap them are not counted: they hold no resources but a pid.
func leftovers(pid int) []string {
	prefix := fmt.Sprintf("%s%d-", groupPrefix, pid)
	machine := fmt.Sprintf("--machine=orphand-%d-", pid)
	var out []string
	v2, v1, _ := hostCgroups()
	for _, dir := range []string{v2, v1, os.TempDir()} {
		if dir == "" {
			continue
		}
		m, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
		out = append(out, m...)
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		n, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if st, err := proctree.ReadStat(n); err != nil || st.IsZombie() {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cgroup"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if bytes.Contains(cg, []byte(prefix)) || bytes.Contains(cmdline, []byte(machine)) {
			out = append(out, fmt.Sprintf("process %d %q", n, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for line := range strings.Lines(string(mi)) {
		if strings.Contains(line, groupPrefix) || (rootfsPath != "" && strings.Contains(line, rootfsPath)) {
			out = append(out, "mount "+strings.TrimSpace(line))
		}
	}
	return out
}

// checkNothingLeft fails t if this process's runs left anything behind or
// host state changed since before.
func checkNothingLeft(t *testing.T, before []string) {
	t.Helper()
	for _, l := range leftovers(os.Getpid()) {
		t.Errorf("left behind: %s", l)
	}
	if after := hostState(); !slices.Equal(before, after) {
		t.Errorf("host state changed:\nbefore %q\nafter  %q", before, after)
	}
}
