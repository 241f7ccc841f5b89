package cgtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"go.uber.org/goleak"
)

// Mount returns the cgroup2 mount point that shows the whole hierarchy,
// from /proc/self/mountinfo, or "".
func Mount() string {
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.FSType != "cgroup2" || m.Root != "/", false
	})
	if err != nil || len(mounts) == 0 {
		return ""
	}
	return mounts[0].Mountpoint
}

// RandHex returns n random bytes in hex.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var root struct {
	mount string // cgroup2 mount point
	rel   string // this binary's test root, relative to mount; "" until made
}

// Root returns this test binary's root cgroup, relative to the mount, and
// the mount; it creates the root on first use. It skips the test unless
// running as root with a writable cgroup2 (the caller should have called
// testutil.RequireRoot first, which fails in strict mode).
func Root(t testing.TB) (mount, rel string) {
	t.Helper()
	if root.rel == "" {
		t.Fatal("cgtest.Root: TestMain must call cgtest.Main")
	}
	if root.mount == "" {
		t.Skip("no cgroup2 mount")
	}
	if err := os.MkdirAll(filepath.Join(root.mount, root.rel), 0o755); err != nil {
		t.Fatalf("create test root cgroup: %v", err)
	}
	return root.mount, root.rel
}

// Dir creates a fresh cgroup under the test root and returns its path
// relative to the mount; it is killed and removed when the test ends.
func Dir(t testing.TB) string {
	t.Helper()
	mount, r := Root(t)
	rel := r + "/t-" + RandHex(4)
	if err := os.Mkdir(filepath.Join(mount, rel), 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := Destroy(mount, rel); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return rel
}

var checks []func() string

// AddCheck adds a check Main runs after the tests: it returns a
// description of what the tests left behind, or "" (call it from TestMain,
// before Main).
func AddCheck(check func() string) { checks = append(checks, check) }

// Main creates nothing yet, runs the helper mode the environment asks for
// (never returning then), or runs the tests and then checks that they left
// no goroutine running, no cgroup and no process under the test root, destroying any leftovers
// and failing the run if there were some. prefix names the package
// ("orphand-test-cgroup", "orphand-test-cgroupfs", …).
func Main(m *testing.M, prefix string) {
	if mode := os.Getenv(helperEnv); mode != "" {
		runHelper(mode)
		os.Exit(0)
	}
	root.mount = Mount()
	root.rel = "/" + prefix + "-" + RandHex(4)
	code := m.Run()
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "cgtest: goroutines left running after the tests: %v\n", err)
		code = 1
	}
	for _, check := range checks {
		if left := check(); left != "" {
			fmt.Fprintf(os.Stderr, "cgtest: tests left things behind:\n%s", left)
			code = 1
		}
	}
	if root.mount != "" {
		if left := leftovers(root.mount, root.rel); left != "" {
			fmt.Fprintf(os.Stderr, "cgtest: tests left things behind under %s%s:\n%s", root.mount, root.rel, left)
			if code == 0 {
				code = 1
			}
		}
		if err := Destroy(root.mount, root.rel); err != nil {
			fmt.Fprintf(os.Stderr, "cgtest: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers describes cgroups and processes below rel (not rel itself).
func leftovers(mount, rel string) string {
	var b strings.Builder
	top := filepath.Join(mount, rel)
	_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // vanished meanwhile
		}
		if !d.IsDir() {
			return nil
		}
		procs, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if p != top || len(procs) > 0 {
			fmt.Fprintf(&b, "  %s (pids: %s)\n", strings.TrimPrefix(p, mount), strings.Join(strings.Fields(string(procs)), " "))
		}
		return nil
	})
	return b.String()
}
