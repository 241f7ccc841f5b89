package harness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
)

// Host is the place on this machine of an agent a test starts: a directory
// every uid can reach (other uids talk to the agent too) for its socket,
// configuration and state, and a cgroup root of its own under the cgroup2
// mount, named with the run's prefix.
type Host struct {
	Dir      string
	Socket   string
	config   string // the configuration file
	StateDir string
	Mount    string // the cgroup2 mount point
	Root     string // the agent's cgroup root, relative to Mount
}

// NewHost makes the place of an agent with the configuration config
// (TOML). It skips the test (testutil) without root or a cgroup2 mount.
// The test's cleanup removes the cgroup root and what is left in it, after
// the cleanups registered later (the agent's stop) have run.
func (r *Run) NewHost(t testing.TB, config string) *Host {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Discover()
	if err != nil || m.Path == "" {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	dir := testutil.ReachableTempDir(t)
	h := &Host{
		Dir:      dir,
		Socket:   filepath.Join(dir, "orphand.sock"),
		config:   filepath.Join(dir, "orphand.toml"),
		StateDir: filepath.Join(dir, "state"),
		Mount:    m.Path,
		Root:     "/" + r.CgroupPrefix + testutil.RandHex(4),
	}
	if err := os.WriteFile(h.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = testutil.RemoveCgroupTree(h.RootDir()) })
	return h
}

// RootDir is the agent's cgroup root in the file system.
func (h *Host) RootDir() string { return filepath.Join(h.Mount, h.Root) }

// GroupDir is where the cgroup at path (relative to the mount, as a
// group's Cgroup says) lives in the file system.
func (h *Host) GroupDir(path string) string { return filepath.Join(h.Mount, path) }

// LeftGroups lists the cgroups of groups still under the agent's root
// (each group has one directly under it).
func (h *Host) LeftGroups() []string {
	left, _ := filepath.Glob(filepath.Join(h.RootDir(), "*", "cgroup.procs"))
	return left
}
