package proc_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/internal/testutil"
)

// The benchmarks run their variants side by side: each iteration runs
// every variant once, in a rotating order, so that the noise of a shared
// machine hits all alike. They report medians as custom metrics; ns/op is
// the sum of the timed variants and means little on its own.

// benchDir makes a cgroup under the test root for one tree; the returned
// function kills what is left and removes it.
func benchDir(b *testing.B) (dir string, done func()) {
	b.Helper()
	mount, root := cgtest.Root(b)
	rel := root + "/b-" + cgtest.RandHex(4)
	dir = filepath.Join(mount, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir, func() {
		if err := cgtest.KillAll(mount, rel); err != nil {
			b.Fatal(err)
		}
		if err := cgtest.Destroy(mount, rel); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBackends(b *testing.B) (connector, fallback *proc.Backend) {
	b.Helper()
	testutil.RequireRoot(b)
	if cgtest.Mount() == "" {
		testutil.Skipf(b, "no cgroup2 mount (the benchmarks compare with cgroup.kill)")
	}
	var err error
	if connector, err = proc.Open(context.Background(), proc.Config{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { connector.Close() })
	if fallback, err = proc.Open(context.Background(), proc.Config{NoConnector: true}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fallback.Close() })
	if connector.Tracking() != proc.TrackConnector {
		testutil.Skipf(b, "no proc connector here")
	}
	return connector, fallback
}

// BenchmarkKill: killing a flat tree of N processes three ways — the
// kernel's cgroup.kill (what the cgroup backends use; the floor), and the
// proc backend with the proc connector and in the fallback. It also
// reports the cost of Create (walking the tree and opening a pidfd for
// each process) for both modes.
func BenchmarkKill(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			conn, fb := benchBackends(b)
			ctx := context.Background()
			names := []string{"cgroup.kill", "connector", "fallback"}
			kill := make([][]time.Duration, len(names))
			track := make([][]time.Duration, len(names))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for k := range names {
					v := (i + k) % len(names)
					b.StopTimer()
					dir, done := benchDir(b)
					cmd := cgtest.FlatTree(b, dir, n)
					// Let cgroup.events' notification rate limit (one per
					// ~10 ms) pass, as it has for any tree killed later
					// than 10 ms after it was filled; the same for all.
					time.Sleep(20 * time.Millisecond)
					var g cgroup.Group
					if v > 0 {
						be := map[int]*proc.Backend{1: conn, 2: fb}[v]
						start := time.Now()
						var err error
						g, err = be.Create(ctx, cgroup.Spec{ID: fmt.Sprintf("k%d", i), Pids: []int{cmd.Process.Pid}})
						track[v] = append(track[v], time.Since(start))
						if err != nil {
							b.Fatal(err)
						}
					}
					ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					if g == nil {
						err = cgtest.KillFloor(ifd, dir)
					} else {
						var res cgroup.KillResult
						res, err = g.Kill(ctx, cgroup.KillOptions{})
						if err == nil && res.Killed != n {
							err = fmt.Errorf("%s killed %d of %d", names[v], res.Killed, n)
						}
					}
					kill[v] = append(kill[v], time.Since(start))
					b.StopTimer()
					unix.Close(ifd)
					if err != nil {
						b.Fatal(err)
					}
					_ = cmd.Wait()
					if g != nil {
						_ = g.Remove(ctx)
					}
					done()
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(cgtest.MedianMS(kill[0]), "cgroup.kill-ms")
			for v := 1; v < len(names); v++ {
				b.ReportMetric(cgtest.MedianMS(kill[v]), names[v]+"-ms")
				b.ReportMetric(pairedRatio(kill[v], kill[0]), names[v]+"-ratio")
				b.ReportMetric(cgtest.MedianMS(track[v]), names[v]+"-create-ms")
			}
		})
	}
}

// BenchmarkWalk: one walk of a group of N tracked processes — what the
// fallback's periodic rescan costs (Members walks before it lists). The
// "cpu-%" metric is the share of one CPU the rescan loop spends on such a
// group: a walk every DefaultRescanInterval, or every 20 walks' time when
// walks are longer.
func BenchmarkWalk(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			_, fb := benchBackends(b)
			ctx := context.Background()
			dir, done := benchDir(b)
			defer done()
			cmd := cgtest.FlatTree(b, dir, n)
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			g, err := fb.Create(ctx, cgroup.Spec{ID: "walk", Pids: []int{cmd.Process.Pid}})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Remove(ctx)
			var took []time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				m, err := g.Members(ctx)
				took = append(took, time.Since(start))
				if err != nil || len(m) != n {
					b.Fatalf("Members: %d, %v", len(m), err)
				}
			}
			b.StopTimer()
			ms := cgtest.MedianMS(took)
			b.ReportMetric(ms, "walk-ms")
			b.ReportMetric(ms*1000/float64(n), "us/process")
			interval := max(float64(proc.DefaultRescanInterval/time.Millisecond), 20*ms)
			b.ReportMetric(100*ms/interval, "cpu-%")
		})
	}
}

// BenchmarkForks: what following forks costs the processes that fork. A
// shell runs `true` 200 times; side by side: with no proc connector
// listener on the host, with the backend listening but tracking nothing
// else (every fork on the host costs an event), and with the shell
// tracked (each child is adopted: a pidfd and a stat read).
func BenchmarkForks(b *testing.B) {
	testutil.RequireRoot(b)
	if cgtest.Mount() == "" {
		testutil.Skipf(b, "no cgroup2 mount")
	}
	const forks = 200
	ctx := context.Background()
	names := []string{"no-listener", "listening", "tracked"}
	took := make([][]time.Duration, len(names))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for k := range names {
			v := (i + k) % len(names)
			b.StopTimer()
			var be *proc.Backend
			if v > 0 {
				var err error
				if be, err = proc.Open(ctx, proc.Config{}); err != nil {
					b.Fatal(err)
				}
				if be.Tracking() != proc.TrackConnector {
					be.Close()
					testutil.Skipf(b, "no proc connector here")
				}
			}
			dir, done := benchDir(b)
			f, err := os.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", `read x; i=0; while [ $i -lt $0 ]; do /bin/true; i=$((i+1)); done`, strconv.Itoa(forks))
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
			in, _ := cmd.StdinPipe()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			if v == 2 {
				if _, err := be.Create(ctx, cgroup.Spec{ID: "forks", Pids: []int{cmd.Process.Pid}}); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			start := time.Now()
			_, _ = in.Write([]byte("go\n"))
			err = cmd.Wait()
			took[v] = append(took[v], time.Since(start))
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if be != nil {
				be.Close()
			}
			done()
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(cgtest.MedianMS(took[0])*1000/forks, "no-listener-us/fork")
	for v := 1; v < len(names); v++ {
		b.ReportMetric(cgtest.MedianMS(took[v])*1000/forks, names[v]+"-us/fork")
		b.ReportMetric(pairedRatio(took[v], took[0]), names[v]+"-ratio")
	}
}

// pairedRatio is the median over iterations of x/base within the same
// iteration: a burst of outside load hits one iteration's variants alike,
// and cannot skew the median.
func pairedRatio(x, base []time.Duration) float64 {
	r := make([]float64, 0, len(x))
	for i := range min(len(x), len(base)) {
		r = append(r, float64(x[i])/float64(base[i]))
	}
	if len(r) == 0 {
		return 0
	}
	slices.Sort(r)
	return r[len(r)/2]
}
