package e2e

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// idleGroups is the number of active groups the agent holds while its
// memory and idle wake-ups are measured.
const idleGroups = 10000

// idleConfig leaves the agent's descriptor budget (it fits its totals to
// RLIMIT_NOFILE, 20,000 on the machines measured, which root there cannot
// raise) to groups rather than watch targets and connections.
const idleConfig = `
[limits]
groups_total = 12000
targets_total = 100
connections_total = 256
`

// idleWindow is how long wake-ups are counted.
const idleWindow = 10 * time.Second

// BenchmarkAgentIdle measures the agent's memory and its wake-ups while
// idle: resident set (VmRSS, and the peak VmHWM) with no group and with
// 10,000 active groups (each a process in a cgroup of its own, watched
// through its pidfd), and context switches of all its threads over 10 s of
// idleness in both cases (/proc/<pid>/task/*/status; no watchdog is set, so
// the target is 0).
func BenchmarkAgentIdle(b *testing.B) {
	testutil.RequireRoot(b)
	testutil.RequireCommand(b, "perl")
	for range b.N {
		a := startAgent(b, idleConfig)
		time.Sleep(time.Second) // let start-up settle
		b.ReportMetric(float64(switches(b, a.pid, idleWindow))/idleWindow.Seconds(), "wakeups/s-0-groups")
		b.ReportMetric(memKB(b, a.pid, "VmRSS")/1024, "RSS-MB-0-groups")

		f := startFlock(b, idleGroups)
		_, groups, took := registerAll(b, a.socket, f.pids, 8)
		b.Logf("%d groups registered in %v", len(groups), took.Round(time.Millisecond))
		time.Sleep(5 * time.Second) // the runtime returns memory after the burst
		b.ReportMetric(float64(switches(b, a.pid, idleWindow))/idleWindow.Seconds(), "wakeups/s-10k-groups")
		// A second window: what the first saw may be the tail of the burst.
		b.ReportMetric(float64(switches(b, a.pid, idleWindow))/idleWindow.Seconds(), "wakeups/s-10k-groups-later")
		b.ReportMetric(memKB(b, a.pid, "VmRSS")/1024, "RSS-MB-10k-groups")
		b.ReportMetric(memKB(b, a.pid, "VmHWM")/1024, "HWM-MB-10k-groups")
		killAll(b, a.socket, groups, 8)
	}
}

// switches counts the context switches of every thread of pid over d.
func switches(b *testing.B, pid int, d time.Duration) int {
	before := ctxSwitches(b, pid)
	time.Sleep(d)
	after := ctxSwitches(b, pid)
	n := 0
	for tid, c := range after {
		n += c - before[tid] // a thread started meanwhile counts from 0
	}
	return n
}

// ctxSwitches reads voluntary + nonvoluntary context switches per thread.
func ctxSwitches(b *testing.B, pid int) map[string]int {
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of %d: %v", pid, err)
	}
	out := map[string]int{}
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				out[t] += n
			}
		}
	}
	return out
}

// memKB reads a "Vm…:  N kB" line of /proc/<pid>/status.
func memKB(b *testing.B, pid int, key string) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for l := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return n
			}
		}
	}
	b.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}
