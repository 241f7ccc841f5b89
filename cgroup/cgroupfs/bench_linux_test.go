package cgroupfs_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
)

// The benchmarks compare orphand with the bare kernel interface side by
// side: each iteration runs every variant once, in an order that rotates,
// so that the noise of a shared machine hits all of them alike. They
// report medians as custom metrics (ms) and the ratios; ns/op is the sum
// of the timed variants and means little on its own.

// benchBackend opens a cgroupfs backend rooted under the test root.
func benchBackend(b *testing.B) (*cgroupfs.Backend, string) {
	b.Helper()
	testutil.RequireRoot(b)
	if cgtest.Mount() == "" {
		testutil.Skipf(b, "no cgroup2 mount")
	}
	root := cgtest.Dir(b)
	be, err := cgroupfs.Open(context.Background(), cgroupfs.Config{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	return be, root
}

// rawKill is the floor: a fresh inotify instance, then cgtest.KillFloor.
// It returns the inotify descriptor for the caller to close after the
// clock stops: closing an inotify instance waits for an SRCU grace period
// (5-20 ms here), a cost the pipeline avoids by sharing one instance per FS.
func rawKill(dir string) (ifd int, err error) {
	ifd, err = unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	return ifd, cgtest.KillFloor(ifd, dir)
}

// BenchmarkKill: Group.Kill (the whole pipeline: open beneath the mount,
// count members, arm the shared inotify, cgroup.kill, wait for populated
// 0) against rawKill on the same kind of tree.
func BenchmarkKill(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			be, _ := benchBackend(b)
			mount := cgtest.Mount()
			ctx := context.Background()
			var raw, ours []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for k := range 2 {
					b.StopTimer()
					id := fmt.Sprintf("k%d-%d", i, k)
					g, err := be.Create(ctx, cgroup.Spec{ID: id})
					if err != nil {
						b.Fatal(err)
					}
					dir := filepath.Join(mount, g.Ref().Path)
					cmd := cgtest.FlatTree(b, dir, n)
					// Let cgroup.events' notification rate limit (one per
					// ~10 ms) pass, as it has for any group killed later
					// than 10 ms after it was filled.
					time.Sleep(20 * time.Millisecond)
					useRaw := (i+k)%2 == 0 // alternate which goes first
					b.StartTimer()
					ifd := -1
					start := time.Now()
					if useRaw {
						ifd, err = rawKill(dir)
					} else {
						_, err = g.Kill(ctx, cgroup.KillOptions{})
					}
					took := time.Since(start)
					b.StopTimer()
					if ifd >= 0 {
						unix.Close(ifd)
					}
					if err != nil {
						b.Fatal(err)
					}
					if useRaw {
						raw = append(raw, took)
					} else {
						ours = append(ours, took)
					}
					_ = cmd.Wait()
					if err := g.Remove(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			r, o := cgtest.MedianMS(raw), cgtest.MedianMS(ours)
			b.ReportMetric(r, "raw-ms")
			b.ReportMetric(o, "orphand-ms")
			b.ReportMetric(o/r, "ratio")
			b.ReportMetric(o-r, "delta-ms")
		})
	}
}

// BenchmarkPlace: four ways to get a new process into a new group, each
// iteration running all four in a rotating order:
//
//	attach-raw:     fork+exec, then mkdir + write cgroup.procs
//	attach-orphand: fork+exec, then Backend.Create with the pid
//	clone3-raw:     mkdir + open, then fork+exec with CLONE_INTO_CGROUP
//	clone3-orphand: Backend.Create + Group.OpenDir, then the same
//
// Moving a process takes cgroup_threadgroup_rwsem for writing, which
// waits for an RCU grace period unless another writer used it within the
// last grace period. "hot" runs the variants back to back (the lock stays
// on its fast path); "cold" idles 50 ms before each, like a registration
// on an otherwise quiet host.
func BenchmarkPlace(b *testing.B) {
	for _, idle := range []time.Duration{0, 50 * time.Millisecond} {
		name := "hot"
		if idle > 0 {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) { benchPlace(b, idle) })
	}
}

func benchPlace(b *testing.B, idle time.Duration) {
	be, root := benchBackend(b)
	mount := cgtest.Mount()
	ctx := context.Background()
	names := []string{"attach-raw", "attach-orphand", "clone3-raw", "clone3-orphand"}
	took := make([][]time.Duration, len(names))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for k := range names {
			v := (i + k) % len(names)
			id := fmt.Sprintf("p%d-%d", i, v)
			rel := root + "/" + id
			dir := filepath.Join(mount, rel)
			b.StopTimer()
			cmd := exec.Command("sleep", "1000")
			time.Sleep(idle)
			b.StartTimer()
			start := time.Now()
			var err error
			switch names[v] {
			case "attach-raw":
				if err = cmd.Start(); err == nil {
					if err = os.Mkdir(dir, 0o755); err == nil {
						err = os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0)
					}
				}
			case "attach-orphand":
				if err = cmd.Start(); err == nil {
					_, err = be.Create(ctx, cgroup.Spec{ID: id, Pids: []int{cmd.Process.Pid}})
				}
			case "clone3-raw":
				if err = os.Mkdir(dir, 0o755); err == nil {
					err = startInto(cmd, dir)
				}
			case "clone3-orphand":
				var g cgroup.Group
				if g, err = be.Create(ctx, cgroup.Spec{ID: id}); err == nil {
					var f *os.File
					if f, err = g.(cgroup.DirOpener).OpenDir(); err == nil {
						cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
						err = cmd.Start()
						f.Close()
					}
				}
			}
			d := time.Since(start)
			b.StopTimer()
			if err != nil {
				b.Fatalf("%s: %v", names[v], err)
			}
			took[v] = append(took[v], d)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if err := cgtest.Destroy(mount, rel); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	for v, name := range names {
		b.ReportMetric(cgtest.MedianMS(took[v]), name+"-ms")
	}
	b.ReportMetric(cgtest.MedianMS(took[1])/cgtest.MedianMS(took[0]), "attach-ratio")
	b.ReportMetric(cgtest.MedianMS(took[3])/cgtest.MedianMS(took[2]), "clone3-ratio")
}

func startInto(cmd *exec.Cmd, dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	return cmd.Start()
}
