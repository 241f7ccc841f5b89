package cgroup

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// plainFS roots an FS at an ordinary directory, to test path resolution on
// a file system that, unlike cgroupfs, has symlinks and mount points.
func plainFS(t *testing.T, dir string, openat2 bool) *FS {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if openat2 && !probeOpenat2(fd) {
		testutil.Skipf(t, "openat2(2) does not work here")
	}
	return &FS{mount: Mount{Path: dir, Root: "/"}, rootFD: fd, rootDev: st.Dev, openat2: openat2, log: slog.New(slog.DiscardHandler)}
}

func TestResolveStaysBeneath(t *testing.T) {
	dir := t.TempDir()
	for _, mk := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(dir, mk), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"abs": "/", "a/up": "..", "a/side": "../c", "a/self": "."} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, openat2 := range []bool{true, false} {
		fs := plainFS(t, dir, openat2)
		for _, ok := range []string{"/", "/a", "/a/b", "/c"} {
			fd, err := fs.openDir(ok)
			if err != nil {
				t.Errorf("openat2=%v: openDir(%q): %v", openat2, ok, err)
				continue
			}
			unix.Close(fd)
		}
		for _, bad := range []string{"/abs", "/a/up", "/a/side", "/a/self", "/abs/etc", "/a/up/c"} {
			fd, err := fs.openDir(bad)
			if err == nil {
				unix.Close(fd)
				t.Errorf("openat2=%v: openDir(%q) followed a symlink", openat2, bad)
			}
		}
	}
}

func TestResolveRefusesOtherMounts(t *testing.T) {
	// /proc is always a mount of its own below /.
	for _, openat2 := range []bool{true, false} {
		fs := plainFS(t, "/", openat2)
		fd, err := fs.openDir("/proc")
		if err == nil {
			unix.Close(fd)
			t.Fatalf("openat2=%v: openDir(/proc) crossed into another mount", openat2)
		}
		if !errors.Is(err, unix.EXDEV) {
			t.Errorf("openat2=%v: openDir(/proc) = %v, want EXDEV", openat2, err)
		}
	}
}

func TestHostilePathsRefused(t *testing.T) {
	fs := plainFS(t, t.TempDir(), false)
	long := "/" + strings.Repeat("x", 4096)
	for _, bad := range []string{"", "a", "/..", "/../etc", "/a/../..", "//", "/a//b", "/a/", "/.", "/a\x00b", long} {
		if _, err := SplitPath(bad); err == nil {
			t.Errorf("SplitPath(%q) accepted", truncate(bad))
		}
		if err := fs.Mkdir(bad); err == nil {
			t.Errorf("Mkdir(%q) accepted", truncate(bad))
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "x\x00"} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) accepted", bad)
		}
	}
}

// TestKillWithoutPidfdInfo runs the fallback kill with membership checked
// through /proc/<pid>/cgroup, as on kernels before 6.13.
func TestKillWithoutPidfdInfo(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2: %v", err)
	}
	fs, err := OpenFS(m, Options{NoKill: true, NoOpenat2: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	fs.noPidfdInfo = true
	rel := cgtest.Dir(t)
	cgtest.StartTree(t, rel)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := fs.Kill(ctx, rel, KillOptions{})
	if err != nil {
		t.Fatalf("Kill: %v", err)
	}
	// Not a snapshot of cgroup.procs: see cgtest.MinTree.
	if res.Method != MethodFreezeSIGKILL || res.Killed < cgtest.MinTree {
		t.Errorf("Kill = %+v, want at least %d killed by %s", res, cgtest.MinTree, MethodFreezeSIGKILL)
	}
	if ev, err := fs.Events(rel); err != nil || ev.Populated {
		t.Errorf("after Kill: populated=%v err=%v", ev.Populated, err)
	}
}

// TestKillPolling kills with cgroup.events polled, as when no inotify
// instance can be had.
func TestKillPolling(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2: %v", err)
	}
	for _, noKill := range []bool{false, true} {
		fs, err := OpenFS(m, Options{NoKill: noKill})
		if err != nil {
			t.Fatal(err)
		}
		fs.noInotify = true
		rel := cgtest.Dir(t)
		cgtest.StartTree(t, rel)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := fs.Kill(ctx, rel, KillOptions{Grace: 50 * time.Millisecond})
		cancel()
		if err != nil || res.Killed < cgtest.MinTree {
			t.Errorf("noKill=%v: Kill = %+v, %v", noKill, res, err)
		}
		if ev, err := fs.Events(rel); err != nil || ev.Populated {
			t.Errorf("noKill=%v: after Kill: populated=%v err=%v", noKill, ev.Populated, err)
		}
		fs.Close()
	}
}

// TestKillRemovedMeanwhile kills a cgroup removed between opening its
// directory and watching its events — as when systemd stops a scope bound
// to a unit that just died: a removed cgroup is empty, so the kill is done.
func TestKillRemovedMeanwhile(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2: %v", err)
	}
	fs, err := OpenFS(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	rel := cgtest.Dir(t) + "/gone"
	if err := fs.Mkdir(rel); err != nil {
		t.Fatal(err)
	}
	dir, err := fs.openDir(rel)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	if err := unix.Rmdir(filepath.Join(m.Path, rel)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if res, err := fs.killDir(ctx, dir, rel, KillOptions{}); err != nil || res.Killed != 0 {
		t.Errorf("Kill of a removed cgroup = %+v, %v; want nothing killed and no error", res, err)
	}
}

// TestCloseStopsNotifier checks that the goroutine a kill starts ends with
// Close, and that many kills share one inotify instance.
func TestCloseStopsNotifier(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2: %v", err)
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs after the other cleanups
	fs, err := OpenFS(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 3 {
		// A fresh cgroup each round: on 6.18 a child spawned with
		// CLONE_INTO_CGROUP into a cgroup that was once cgroup.kill'ed is
		// SIGKILLed at birth (the kernel compares the kill counters of the
		// parent's cgroup and of the target).
		rel := cgtest.Dir(t)
		cgtest.StartTree(t, rel)
		if _, err := fs.Kill(ctx, rel, KillOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	n := fs.notify
	if n == nil {
		t.Fatal("no shared notifier after kills")
	}
	n.mu.Lock()
	left := len(n.subs)
	n.mu.Unlock()
	if left != 0 {
		t.Errorf("%d watches left after the kills ended", left)
	}
	fs.Close()
	select {
	case <-n.done:
	default:
		t.Error("the notifier's goroutine still runs after Close")
	}
}

// TestInsideUsesCgroupID checks that the pidfd's cgroup id matches the
// inode of the cgroup directory (both membership checks agree).
func TestInsideUsesCgroupID(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2: %v", err)
	}
	fs, err := OpenFS(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	rel := cgtest.Dir(t)
	other := cgtest.Dir(t)
	cgtest.StartTree(t, rel)
	pids, _ := fs.Procs(rel, false)
	dir, err := fs.openDir(rel)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	var in, out tree
	if err := in.walk(dir, true); err != nil {
		t.Fatal(err)
	}
	odir, _ := fs.openDir(other)
	defer unix.Close(odir)
	if err := out.walk(odir, true); err != nil {
		t.Fatal(err)
	}
	p, err := proctree.Open(pids[0])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, noInfo := range []bool{false, true} {
		fs.noPidfdInfo = noInfo
		if ok, err := fs.inside(p, &in); !ok || err != nil {
			t.Errorf("noPidfdInfo=%v: inside(own group) = %v, %v", noInfo, ok, err)
		}
		if ok, err := fs.inside(p, &out); ok || err != nil {
			t.Errorf("noPidfdInfo=%v: inside(other group) = %v, %v", noInfo, ok, err)
		}
	}
}
