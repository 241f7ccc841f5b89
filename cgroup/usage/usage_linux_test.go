package usage

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
)

func TestMain(m *testing.M) { cgtest.Main(m, "orphand-test-usage") }

// On the kernel: a process that burned CPU in a cgroup shows it, and each
// controller of the host is either read or said to be missing, with why.
func TestReadRealCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	rel := cgtest.Dir(t)
	mount, _ := cgtest.Root(t)
	dir, err := os.Open(filepath.Join(mount, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// Spawned straight into the cgroup; it counts to 100,000 and exits.
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done`)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	u, err := NewReader(mount).Read(rel)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU == nil || u.CPU.UsageUsec == 0 {
		t.Errorf("cpu %+v after a busy loop in the cgroup", u.CPU)
	}
	b, err := os.ReadFile(filepath.Join(mount, rel, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	enabled := strings.Fields(string(b))
	for name, present := range map[string]bool{"memory": u.Memory != nil, "pids": u.Pids != nil, "io": u.IO != nil} {
		switch {
		case slices.Contains(enabled, name) && !present:
			t.Errorf("%s is enabled but not read (%s)", name, u.Unavailable[name])
		case !slices.Contains(enabled, name) && (present || u.Unavailable[name] == ""):
			t.Errorf("%s is not enabled, yet read %v or given no reason (%q)", name, present, u.Unavailable[name])
		}
		t.Logf("%s: enabled %v, reason if missing: %q", name, slices.Contains(enabled, name), u.Unavailable[name])
	}
}

// BenchmarkRead is what reading one group's usage costs (list reads every
// group's; a kill reads its group's final figures before the removal).
func BenchmarkRead(b *testing.B) {
	testutil.RequireRoot(b)
	rel := cgtest.Dir(b)
	mount, _ := cgtest.Root(b)
	r := NewReader(mount)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Read(rel); err != nil {
			b.Fatal(err)
		}
	}
}
