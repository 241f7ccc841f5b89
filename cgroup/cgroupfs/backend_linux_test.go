package cgroupfs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

func TestMain(m *testing.M) {
	cgtest.RegisterHelper("open-default", helperOpenDefault)
	cgtest.Main(m, "orphand-test-cgroupfs")
}

// modes runs a test with cgroup.kill and with the fallback forced.
// and once more resolving paths without openat2(2).
var modes = []struct {
	name   string
	cfg    cgroupfs.Config
	method string
}{
	{"cgroup.kill", cgroupfs.Config{}, cgroup.MethodCgroupKill},
	{"fallback", cgroupfs.Config{NoCgroupKill: true}, cgroup.MethodFreezeSIGKILL},
	{"no-openat2", cgroupfs.Config{NoOpenat2: true}, cgroup.MethodCgroupKill},
}

// openBackend opens a backend rooted at a fresh cgroup under the test root.
func openBackend(t *testing.T, cfg cgroupfs.Config) (*cgroupfs.Backend, string) {
	t.Helper()
	testutil.RequireRoot(t)
	if cgtest.Mount() == "" {
		testutil.Skipf(t, "no cgroup2 mount")
	}
	root := cgtest.Dir(t)
	cfg.Root = root
	b, err := cgroupfs.Open(ctx(t, 30*time.Second), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, root
}

func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// startSleep starts `sleep 1000` in the test's own cgroup (outside any
// group) and reaps it when the test ends.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "1000")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	})
	return c
}

// spawnInto starts argv straight inside g and reaps it when the test ends.
func spawnInto(t testing.TB, g cgroup.Group, argv ...string) *exec.Cmd {
	t.Helper()
	dir, err := g.(cgroup.DirOpener).OpenDir()
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	c := exec.Command(argv[0], argv[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if err := c.Start(); err != nil {
		t.Fatalf("spawn into %s: %v", g.ID(), err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	})
	return c
}

func TestOpenFeatures(t *testing.T) {
	b, root := openBackend(t, cgroupfs.Config{})
	f := b.Features()
	if f.Backend != "cgroupfs" || f.Root != root || !f.Writable || f.Mount != cgtest.Mount() {
		t.Errorf("Features = %+v", f)
	}
	if !f.Kill || !f.Freeze || !f.Openat2 {
		t.Errorf("Features = %+v; this kernel has cgroup.kill, cgroup.freeze and openat2", f)
	}
	if f.Layout != cgroup.LayoutHybrid && f.Layout != cgroup.LayoutUnified {
		t.Errorf("Layout = %q", f.Layout)
	}
	// The root may also be given as an absolute path below the mount.
	b2, err := cgroupfs.Open(ctx(t, 30*time.Second), cgroupfs.Config{Root: filepath.Join(cgtest.Mount(), root)})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.Features().Root != root {
		t.Errorf("absolute root gave Root %q, want %q", b2.Features().Root, root)
	}
	for _, bad := range []string{"relative", "/a/../..", "/a//b", "/a\x00"} {
		if b, err := cgroupfs.Open(ctx(t, 30*time.Second), cgroupfs.Config{Root: bad}); err == nil {
			b.Close()
			t.Errorf("Open accepted root %q", bad)
		}
	}
}

func TestCreateAttachKill(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			b, _ := openBackend(t, mode.cfg)
			if b.Features().Openat2 == mode.cfg.NoOpenat2 {
				t.Errorf("Features().Openat2 = %v with NoOpenat2 = %v", b.Features().Openat2, mode.cfg.NoOpenat2)
			}
			s1, s2 := startSleep(t), startSleep(t)
			g, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "g1", Pids: []int{s1.Process.Pid}})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if err := g.Attach(ctx(t, 10*time.Second), s2.Process.Pid); err != nil {
				t.Fatalf("Attach: %v", err)
			}
			spawned := spawnInto(t, g, "sleep", "1000")
			members, err := g.Members(ctx(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			want := []int{s1.Process.Pid, s2.Process.Pid, spawned.Process.Pid}
			slices.Sort(members)
			slices.Sort(want)
			if !slices.Equal(members, want) {
				t.Errorf("Members = %v, want %v", members, want)
			}
			res, err := g.Kill(ctx(t, time.Minute), cgroup.KillOptions{})
			if err != nil || res.Killed != 3 || res.Method != mode.method {
				t.Errorf("Kill = %+v, %v; want 3 killed by %s", res, err, mode.method)
			}
			for _, c := range []*exec.Cmd{s1, s2, spawned} {
				if err := c.Wait(); err == nil || c.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Errorf("pid %d ended with %v, want SIGKILL", c.Process.Pid, c.ProcessState)
				}
			}
			if err := g.Remove(ctx(t, 10*time.Second)); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if _, err := b.Load(ctx(t, 10*time.Second), g.Ref()); !errors.Is(err, cgroup.ErrNotFound) {
				t.Errorf("Load after Remove: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestAttachRunningTree moves an already running hostile tree into a group
// the way the agent does (every process of it, until none is left
// outside), then kills it.
func TestAttachRunningTree(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			b, _ := openBackend(t, mode.cfg)
			staging := cgtest.Dir(t)
			cgtest.StartTree(t, staging)
			fs := b.FS()
			pids, err := fs.Procs(staging, true)
			if err != nil {
				t.Fatal(err)
			}
			g, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "tree", Pids: pids[:1]})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			for round := 0; ; round++ {
				left, err := fs.Procs(staging, true)
				if err != nil {
					t.Fatal(err)
				}
				if len(left) == 0 {
					break
				}
				if round > 100 {
					t.Fatalf("processes keep appearing outside the group: %v", left)
				}
				for _, pid := range left {
					if err := g.Attach(ctx(t, 10*time.Second), pid); err != nil && !errors.Is(err, os.ErrProcessDone) {
						t.Fatalf("Attach %d: %v", pid, err)
					}
				}
			}
			members, _ := g.Members(ctx(t, 10*time.Second))
			held := hold(t, members)
			res, err := g.Kill(ctx(t, time.Minute), cgroup.KillOptions{})
			if err != nil || res.Method != mode.method || res.Killed < cgtest.MinTree {
				t.Errorf("Kill = %+v, %v", res, err)
			}
			assertExited(t, held)
			if err := g.Remove(ctx(t, 10*time.Second)); err != nil {
				t.Fatalf("Remove: %v", err)
			}
		})
	}
}

func hold(t *testing.T, pids []int) []*proctree.Process {
	t.Helper()
	var ps []*proctree.Process
	for _, pid := range pids {
		p, err := proctree.Open(pid)
		if err != nil {
			continue
		}
		t.Cleanup(func() { p.Close() })
		ps = append(ps, p)
	}
	return ps
}

func assertExited(t *testing.T, ps []*proctree.Process) {
	t.Helper()
	c := ctx(t, 10*time.Second)
	for _, p := range ps {
		if err := p.Wait(c); err != nil {
			t.Errorf("pid %d survived the kill: %v", p.Pid(), err)
		}
	}
}

func TestNestedGroups(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			b, root := openBackend(t, mode.cfg)
			c := ctx(t, time.Minute)
			parent, err := b.Create(c, cgroup.Spec{ID: "parent"})
			if err != nil {
				t.Fatal(err)
			}
			child, err := b.Create(c, cgroup.Spec{ID: "child", Parent: parent})
			if err != nil {
				t.Fatal(err)
			}
			grandchild, err := b.Create(c, cgroup.Spec{ID: "grandchild", Parent: child})
			if err != nil {
				t.Fatal(err)
			}
			if want := root + "/parent/child/grandchild"; grandchild.Ref().Path != want {
				t.Errorf("nested path %q, want %q", grandchild.Ref().Path, want)
			}
			var cmds []*exec.Cmd
			for _, g := range []cgroup.Group{parent, child, grandchild} {
				cmds = append(cmds, spawnInto(t, g, "sleep", "1000"))
			}
			refs, err := b.Groups(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(refs); got != fmt.Sprint([]cgroup.Ref{parent.Ref(), child.Ref(), grandchild.Ref()}) {
				t.Errorf("Groups = %s", got)
			}
			if m, _ := parent.Members(c); len(m) != 3 {
				t.Errorf("parent Members = %v, want 3 (nested included)", m)
			}
			res, err := parent.Kill(c, cgroup.KillOptions{})
			if err != nil || res.Killed != 3 {
				t.Errorf("Kill = %+v, %v; want 3", res, err)
			}
			for _, cmd := range cmds {
				_ = cmd.Wait()
				if cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Errorf("pid %d: %v, want SIGKILL", cmd.Process.Pid, cmd.ProcessState)
				}
			}
			if err := parent.Remove(c); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if refs, _ := b.Groups(c); len(refs) != 0 {
				t.Errorf("Groups after Remove = %v", refs)
			}
		})
	}
}

func TestHostileIDs(t *testing.T) {
	b, root := openBackend(t, cgroupfs.Config{})
	c := ctx(t, 30*time.Second)
	mount := cgtest.Mount()
	before := listDirs(t, mount)
	hostile := []string{"", "..", "../x", "../../etc", "/", "/x", "a/b", "a\x00b", "\x00", ".probe", "A", "-a", strings.Repeat("a", 4096), "a\n"}
	for _, id := range hostile {
		if g, err := b.Create(c, cgroup.Spec{ID: id}); !errors.Is(err, cgroup.ErrInvalidID) {
			if g != nil {
				_ = g.Remove(c)
			}
			t.Errorf("Create(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	for _, ref := range []cgroup.Ref{
		{ID: "x", Path: "/x"},
		{ID: "x", Path: root + "/../x"},
		{ID: "etc", Path: root + "/../../../../etc"},
		{ID: "x", Path: root + "/x/../../x"},
		{ID: "x", Path: root},
		{ID: "y", Path: root + "/x"},
		{ID: "..", Path: root + "/.."},
	} {
		if g, err := b.Load(c, ref); err == nil {
			t.Errorf("Load(%+v) = %v, want an error", ref, g.Ref())
		}
	}
	if after := listDirs(t, mount); !slices.Equal(before, after) {
		t.Errorf("the top of the hierarchy changed: %v -> %v", before, after)
	}
	if refs, _ := b.Groups(c); len(refs) != 0 {
		t.Errorf("hostile ids left groups: %v", refs)
	}
}

func listDirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), "orphand-test-") && !strings.HasPrefix(e.Name(), "orphand-nspawn") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestCreateUndoesOnFailure(t *testing.T) {
	b, _ := openBackend(t, cgroupfs.Config{})
	s := startSleep(t)
	from, err := b.FS().CgroupOf(s.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// The second pid does not exist: the first must go back, the group away.
	_, err = b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "undo", Pids: []int{s.Process.Pid, 1 << 30}})
	if err == nil {
		t.Fatal("Create with a missing pid succeeded")
	}
	if now, _ := b.FS().CgroupOf(s.Process.Pid); now != from {
		t.Errorf("pid %d left in %s, want it back in %s", s.Process.Pid, now, from)
	}
	if refs, _ := b.Groups(ctx(t, 10*time.Second)); len(refs) != 0 {
		t.Errorf("failed Create left %v", refs)
	}
	if _, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "dup"}); !errors.Is(err, os.ErrExist) {
		t.Errorf("duplicate id: %v, want ErrExist", err)
	}
}

func TestReopenLoadsGroups(t *testing.T) {
	b, root := openBackend(t, cgroupfs.Config{})
	c := ctx(t, 30*time.Second)
	g, err := b.Create(c, cgroup.Spec{ID: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	spawnInto(t, g, "sleep", "1000")
	b2, err := cgroupfs.Open(c, cgroupfs.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	refs, err := b2.Groups(c)
	if err != nil || len(refs) != 1 || refs[0] != g.Ref() {
		t.Fatalf("Groups = %v, %v; want [%v]", refs, err, g.Ref())
	}
	blob, _ := json.Marshal(refs[0])
	var ref cgroup.Ref
	_ = json.Unmarshal(blob, &ref)
	g2, err := b2.Load(c, ref)
	if err != nil {
		t.Fatalf("Load(%s): %v", blob, err)
	}
	if m, _ := g2.Members(c); len(m) != 1 {
		t.Errorf("loaded group Members = %v", m)
	}
	if _, err := g2.Kill(c, cgroup.KillOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := g2.Remove(c); err != nil {
		t.Fatal(err)
	}
}
