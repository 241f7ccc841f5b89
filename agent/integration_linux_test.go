package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/internal/testutil"
)

// cgroupRoot makes a fresh cgroup for one test under the cgroup2 mount and
// removes it, with anything left in it, when the test ends. It returns the
// path relative to the mount and the absolute directory.
func cgroupRoot(t testing.TB) (rel, dir string) {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Discover()
	if err != nil || m.Path == "" {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	rel = "/orphand-test-agent-" + hex.EncodeToString(b[:])
	dir = filepath.Join(m.Path, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroupTree(t, dir) })
	return rel, dir
}

// removeCgroupTree kills whatever is left under dir and removes the
// directories, deepest first.
func removeCgroupTree(t testing.TB, dir string) {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if strings.Contains(string(b), "populated 0") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// subdirs lists the cgroups directly under dir.
func subdirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// startCgroupfsAgent runs an agent with the real cgroupfs backend rooted
// at a fresh test cgroup.
func startCgroupfsAgent(t testing.TB, cfg Config, opts ...Option) (*testAgent, string) {
	t.Helper()
	rel, dir := cgroupRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := cgroupfs.Open(ctx, cgroupfs.Config{Root: rel, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("cgroupfs: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return startAgent(t, cfg, b, opts...), dir
}
