package agent

import (
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// withoutMetrics makes an agent that counts nothing, for the side-by-side
// benchmark.
func withoutMetrics() Option { return func(a *Agent) { a.metrics = nil } }

// BenchmarkMetricsHooks is the cost of the calls the register and kill
// paths make into the metrics, alone: what each adds to a request.
func BenchmarkMetricsHooks(b *testing.B) {
	m := newMetrics(time.Now())
	b.Run("register", func(b *testing.B) { // a registration answered ok
		b.ReportAllocs()
		for b.Loop() {
			m.request(ipc.OpRegister, nil)
			m.stateChanged("", ipc.StateActive)
		}
	})
	b.Run("kill", func(b *testing.B) { // a kill: begun, emptied, answered
		b.ReportAllocs()
		for b.Loop() {
			m.killStarted(reasonRequest)
			m.stateChanged(ipc.StateActive, ipc.StateKilling)
			m.killEnded(time.Millisecond, 3)
			m.stateChanged(ipc.StateKilling, ipc.StateDead)
			m.request(ipc.OpKill, nil)
		}
	})
	b.Run("refused", func(b *testing.B) { // a request answered with an error code
		b.ReportAllocs()
		e := &ipc.Error{Code: ipc.CodePermissionDenied}
		for b.Loop() {
			m.request(ipc.OpRegister, e)
		}
	})
}

// BenchmarkMetricsRegisterAB registers and kills processes with two agents
// side by side in one process, one with metrics and one without, in turns
// (the order alternating): the same backend (cgroupfs), the same load.
// Each registration and each kill is one request round trip, timed from
// the client.
func BenchmarkMetricsRegisterAB(b *testing.B) {
	testutil.RequireRoot(b)
	const samples = 300
	with, _ := startCgroupfsAgent(b, testConfig())
	without, _ := startCgroupfsAgent(b, testConfig(), withoutMetrics())
	for range b.N {
		pids := startSleepers(b, 2*samples)
		regs := [2][]time.Duration{}
		kills := [2][]time.Duration{}
		conns := []*client{dial(b, with.sock), dial(b, without.sock)}
		for i := range samples {
			for k := range 2 {
				j := (i + k) % 2 // alternate which goes first
				c := conns[j]
				start := time.Now()
				g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: pids[2*i+j]}).Group
				regs[j] = append(regs[j], time.Since(start))
				start = time.Now()
				c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
				kills[j] = append(kills[j], time.Since(start))
			}
		}
		p50 := func(d []time.Duration) float64 {
			slices.Sort(d)
			return float64(d[len(d)/2].Microseconds()) / 1000
		}
		b.ReportMetric(p50(regs[0]), "register-p50-ms-metrics")
		b.ReportMetric(p50(regs[1]), "register-p50-ms-none")
		b.ReportMetric(p50(regs[0])/p50(regs[1]), "register-ratio")
		b.ReportMetric(p50(kills[0]), "kill-p50-ms-metrics")
		b.ReportMetric(p50(kills[1]), "kill-p50-ms-none")
		b.ReportMetric(p50(kills[0])/p50(kills[1]), "kill-ratio")
	}
}

// startSleepers starts n sleeping processes (children of one shell, which
// the cleanup kills with them) and returns their pids.
func startSleepers(tb testing.TB, n int) []int {
	tb.Helper()
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do sleep 1000 & i=$((i+1)); done; echo ready; wait`, n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		tb.Fatalf("sleepers: %q %v", buf, err)
	}
	return waitChildren(tb, cmd.Process.Pid, n)
}

// BenchmarkScrape is what a scrape costs the agent — gathering every
// collector (its own, the Go runtime's, the process's) and encoding the
// text format — with no group and with many: the allocations must not
// grow with the groups.
func BenchmarkScrape(b *testing.B) {
	testutil.RequireRoot(b)
	for _, n := range []int{0, 1000} {
		b.Run(strconv.Itoa(n)+"-groups", func(b *testing.B) {
			ta := startAgent(b, testConfig(), newFakeBackend(b))
			if n > 0 {
				c := dial(b, ta.sock)
				for _, pid := range startSleepers(b, n) {
					c.ok(ipc.Request{Op: ipc.OpRegister, Pid: pid})
				}
			}
			scrape := func() {
				mfs, err := ta.metrics.all.Gather()
				if err != nil {
					b.Fatal(err)
				}
				enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				scrape()
			}
			b.ReportMetric(testing.AllocsPerRun(20, scrape), "allocs/scrape")
		})
	}
}

// TestScrapeAllocationsIndependentOfGroups: a scrape allocates as much with
// a thousand groups as with none (give or take the Go collector's own
// figures, which are the same for both).
func TestScrapeAllocationsIndependentOfGroups(t *testing.T) {
	testutil.RequireRoot(t)
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	allocs := func() float64 {
		return testing.AllocsPerRun(20, func() {
			mfs, _ := ta.metrics.all.Gather()
			enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				_ = enc.Encode(mf)
			}
		})
	}
	before := allocs()
	c := dial(t, ta.sock)
	for _, pid := range startSleepers(t, 300) {
		c.ok(ipc.Request{Op: ipc.OpRegister, Pid: pid})
	}
	after := allocs()
	if after > before*1.02+2 {
		t.Errorf("a scrape allocates %v times with 300 groups, %v with none", after, before)
	}
	t.Logf("allocations per scrape: %v with no group, %v with 300", before, after)
}
