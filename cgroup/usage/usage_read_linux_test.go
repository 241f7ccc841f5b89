package usage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeCgroup writes files the way the kernel shows them, in a directory
// standing in for a cgroup: the logic of Read, not the kernel, under test.
func fakeCgroup(t *testing.T, files map[string]string) (mount, rel string) {
	t.Helper()
	mount = t.TempDir()
	rel = "/grp"
	dir := filepath.Join(mount, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return mount, rel
}

func TestReadEveryController(t *testing.T) {
	mount, rel := fakeCgroup(t, map[string]string{
		"cgroup.controllers": "cpuset cpu io memory pids\n",
		"cpu.stat":           "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
		"memory.current":     "4096\n",
		"memory.peak":        "8192\n",
		"memory.stat":        "anon 4096\nfile 0\n",
		"pids.current":       "3\n",
		"pids.peak":          "7\n",
		"io.stat":            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n",
	})
	u, err := (&Reader{mount: mount}).Read(rel)
	if err != nil {
		t.Fatal(err)
	}
	if u.Unavailable != nil {
		t.Errorf("unavailable: %v", u.Unavailable)
	}
	if u.CPU == nil || *u.CPU != (CPU{UsageUsec: 1500, UserUsec: 1000, SystemUsec: 500}) {
		t.Errorf("cpu %+v", u.CPU)
	}
	if u.Memory == nil || u.Memory.Current != 4096 || u.Memory.Peak == nil || *u.Memory.Peak != 8192 {
		t.Errorf("memory %+v", u.Memory)
	}
	if u.Pids == nil || u.Pids.Current != 3 || u.Pids.Peak == nil || *u.Pids.Peak != 7 {
		t.Errorf("pids %+v", u.Pids)
	}
	if u.IO == nil || *u.IO != (IO{ReadBytes: 101, WriteBytes: 202}) {
		t.Errorf("io %+v", u.IO)
	}
}

// A controller that is not enabled gives no figure, with the reason —
// never a zero; so does a file the kernel is too old for.
func TestReadSaysWhatIsMissing(t *testing.T) {
	mount, rel := fakeCgroup(t, map[string]string{
		"cgroup.controllers": "memory\n",
		"cpu.stat":           "usage_usec 10\nuser_usec 5\nsystem_usec 5\n",
		"memory.current":     "4096\n",
		"memory.stat":        "anon 4096\n",
	})
	r := &Reader{mount: mount, v1: map[string]bool{"pids": true}}
	u, err := r.Read(rel)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU == nil || u.CPU.UsageUsec != 10 {
		t.Errorf("cpu %+v: cpu.stat is there without the cpu controller", u.CPU)
	}
	if u.Memory == nil || u.Memory.Peak != nil {
		t.Errorf("memory %+v: want current, and no peak (no memory.peak)", u.Memory)
	}
	if u.Pids != nil || u.IO != nil {
		t.Errorf("pids %+v, io %+v: want none", u.Pids, u.IO)
	}
	for name, want := range map[string]string{
		"pids": "the pids controller is bound to cgroup v1 on this host (hybrid cgroups), so cgroup v2 has no pids figures",
		"io":   "the io controller is not enabled for this cgroup (it is not in its parent's cgroup.subtree_control)",
	} {
		if got := u.Unavailable[name]; got != want {
			t.Errorf("unavailable[%s] = %q, want %q", name, got, want)
		}
	}
	if _, ok := u.Unavailable["memory"]; ok {
		t.Errorf("memory reported unavailable: %v", u.Unavailable)
	}

	os.Remove(filepath.Join(mount, rel, "cpu.stat"))
	u, _ = r.Read(rel)
	if u.CPU != nil || u.Unavailable["cpu"] != "cpu.stat is missing" {
		t.Errorf("without cpu.stat: cpu %+v, reason %q", u.CPU, u.Unavailable["cpu"])
	}
}

func TestReadNoSuchCgroup(t *testing.T) {
	if _, err := NewReader(t.TempDir()).Read("/gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestParseV1Bound(t *testing.T) {
	got := parseV1Bound("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nmemory\t0\t21\t1\npids\t8\t1\t1\nbad\n")
	if len(got) != 2 || !got["cpuset"] || !got["pids"] {
		t.Fatalf("parseV1Bound = %v", got)
	}
}
