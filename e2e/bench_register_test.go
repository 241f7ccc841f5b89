package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// flock is a Perl process and n children of it that sleep: processes to
// register, cheap to make (fork without exec).
type flock struct {
	parent *exec.Cmd
	pids   []int
	done   chan struct{}
}

const flockScript = `
$| = 1;
my @kids;
for (1 .. shift) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) { sleep 1000 while 1; POSIX::_exit(0); }
	print "$pid\n";
}
print "ready\n";
my $eof = <STDIN>;
kill 'KILL', -$$;
`

// startFlock starts n sleeping processes. The cleanup kills them.
func startFlock(tb testing.TB, n int) *flock {
	tb.Helper()
	cmd := exec.Command("perl", "-MPOSIX", "-e", flockScript, strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kill -$$ ends them all
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	f := &flock{parent: cmd, done: make(chan struct{})}
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
		pid, err := strconv.Atoi(sc.Text())
		if err != nil {
			tb.Fatalf("flock: %q", sc.Text())
		}
		f.pids = append(f.pids, pid)
	}
	go func() { _, _ = io.Copy(io.Discard, out); _ = cmd.Wait(); close(f.done) }()
	tb.Cleanup(func() {
		_ = stdin.Close() // the parent kills its process group, then exits
		select {
		case <-f.done:
		case <-time.After(goneTimeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-f.done
		}
	})
	if len(f.pids) != n {
		tb.Fatalf("flock: %d processes started, want %d", len(f.pids), n)
	}
	return f
}

// registerAll registers every pid with `workers` clients at once and
// returns each registration's latency and the groups.
func registerAll(tb testing.TB, socket string, pids []int, workers int) ([]time.Duration, []string, time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([]time.Duration, len(pids))
	groups := make([]string, len(pids))
	next := make(chan int, len(pids))
	for i := range pids {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var failed sync.Once
	began := time.Now()
	for range workers {
		wg.Go(func() {
			c, err := ipc.Dial(ctx, socket)
			if err != nil {
				failed.Do(func() { tb.Error(err) })
				return
			}
			defer c.Close()
			for i := range next {
				t0 := time.Now()
				g, err := c.Register(ctx, ipc.RegisterOptions{Pid: pids[i], Name: "bench"})
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Do(func() { tb.Errorf("register %d: %v", pids[i], err) })
					return
				}
				groups[i] = g.ID
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	if tb.Failed() {
		tb.FailNow()
	}
	return lat, groups, took
}

// killAll kills every group with `workers` clients at once.
func killAll(tb testing.TB, socket string, groups []string, workers int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	next := make(chan string, len(groups))
	for _, g := range groups {
		next <- g
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c, err := ipc.Dial(ctx, socket)
			if err != nil {
				tb.Error(err)
				return
			}
			defer c.Close()
			for g := range next {
				if _, err := c.Kill(ctx, g, new(time.Duration(0))); err != nil {
					tb.Errorf("kill %s: %v", g, err)
				}
			}
		})
	}
	wg.Wait()
}

// registerSamples is how many registrations each measurement makes.
const registerSamples = 500

// BenchmarkRegister measures registration: latency (p50, p99) one request
// at a time on one connection, and throughput with 8 clients at once, each
// registration moving one process into a new group. By backend: cgroupfs
// on this host; systemd in a systemd-nspawn container (the same benchmark
// run there, against the socket-activated agent).
func BenchmarkRegister(b *testing.B) {
	b.Run("cgroupfs", func(b *testing.B) {
		testutil.RequireRoot(b)
		testutil.RequireCommand(b, "perl")
		if nspawn.Inside() {
			b.Skip("the container runs the systemd case")
		}
		a := startAgent(b, "")
		benchRegister(b, a.socket)
	})
	b.Run("systemd", func(b *testing.B) {
		if !nspawn.Inside() {
			benchInContainer(b, "^BenchmarkRegister$/^systemd$")
			return
		}
		a := systemdAgent(b)
		benchRegister(b, a.socket)
	})
}

func benchRegister(b *testing.B, socket string) {
	for range b.N {
		f := startFlock(b, 2*registerSamples)
		seq, g1, _ := registerAll(b, socket, f.pids[:registerSamples], 1)
		_, g2, took := registerAll(b, socket, f.pids[registerSamples:], 8)
		b.ReportMetric(percentile(seq, 50), "p50-ms")
		b.ReportMetric(percentile(seq, 99), "p99-ms")
		b.ReportMetric(float64(registerSamples)/took.Seconds(), "regs/s")
		killAll(b, socket, append(g1, g2...), 8)
	}
}

var benchLine = regexp.MustCompile(`^Benchmark\S+\s+\d+\s+(.*)$`)

// benchInContainer runs this test binary's benchmarks matching pattern in
// a container booted with the test units, and reports their metrics here.
func benchInContainer(b *testing.B, pattern string) {
	nspawn.Require(b)
	share := b.TempDir()
	if err := containerBins(share); err != nil {
		b.Fatal(err)
	}
	build := exec.Command("go", "test", "-c", "-o", share+"/e2e.test", ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the test binary: %v\n%s", err, out)
	}
	var out strings.Builder
	code, err := nspawn.Run(context.Background(), nspawn.Options{
		Share: share,
		Units: testUnits,
		Env:   map[string]string{binEnv: nspawn.GuestShare},
		Script: fmt.Sprintf("install -m 0755 %s/e2e.test /usr/local/bin/e2e.test && cd /tmp && "+
			"/usr/local/bin/e2e.test -test.run '^$' -test.bench '%s' -test.benchtime 1x", nspawn.GuestShare, pattern),
		Output:  &out,
		Timeout: 10 * time.Minute,
	})
	if err != nil || code != 0 {
		b.Fatalf("benchmark in the container: exit %d, %v\n%s", code, err, out.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		f := strings.Fields(m[1])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil && f[i+1] != "ns/op" {
				b.ReportMetric(v, f[i+1])
			}
		}
		return
	}
	b.Fatalf("no benchmark result in the container's output:\n%s", out.String())
}
