package compat

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/agent/compat"
)

// oldDaemon is testdata/oldpoll.c running: the original daemon's 2-second
// sweep, reimplemented.
type oldDaemon struct {
	sock string
}

func startOldDaemon(b *testing.B, p programs) *oldDaemon {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "old.sock")
	cmd := exec.Command(p.oldpoll, sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("oldpoll did not start: %q", lines.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, out); _ = cmd.Wait(); close(done) }()
	b.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return &oldDaemon{sock: sock}
}

// ping sends a PING on a connection of its own and waits for the echo.
// oldpoll accepts one connection per pass and reads every readable one in
// each: once a PING sent after other records is echoed, those are handled.
func ping(b *testing.B, sock string) {
	b.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	rec := compat.Record{Parent: 1, Child: 1, Action: compat.ActionPing}.Append(nil)
	_ = nc.SetDeadline(time.Now().Add(waitLong))
	if _, err := nc.Write(rec); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(nc, make([]byte, len(rec))); err != nil {
		b.Fatalf("no PING echo: %v", err)
	}
}

// deathRound is one parent's death: how long until its children were
// gone, and how many of their children were left alive.
type deathRound struct {
	children time.Duration // SIGKILL of the parent → every child gone
	all      time.Duration // … → every child and grandchild gone (when waited for)
	left     int           // grandchildren alive once the children were gone
}

// parentDeath runs the spawner with children under orphand-forkwait.so
// pointed at sock, waits until sync says the records are in effect,
// SIGKILLs it and times its children's death. With all it also waits for
// the grandchildren (the agent kills them); else it counts those left
// alive once the children are gone (the old daemon never signals them).
func parentDeath(b *testing.B, p programs, sock string, children int, all bool, sync func(f *family)) deathRound {
	b.Helper()
	f := startSpawner(b, p, sock, children, 0)
	sync(f)
	// A parent dies at any moment of the old daemon's 2-second cycle; the
	// rounds would otherwise fall at the same phase of it.
	time.Sleep(rand.N(2 * time.Second))
	kids := hold(b, f.kept...)
	grandkids := hold(b, f.grandchildren...)
	start := time.Now()
	f.proc.kill(b)
	waitGone(b, "a child of the killed parent", kids)
	r := deathRound{children: time.Since(start)}
	if all {
		waitGone(b, "a grandchild of the killed parent", grandkids)
		r.all = time.Since(start)
	}
	for _, g := range grandkids {
		if !g.Exited() {
			r.left++
			_ = g.Signal(syscall.SIGKILL)
		}
	}
	return r
}

// BenchmarkParentDeath measures, side by side and interleaved, the time
// from a parent's SIGKILL to the death of the children it forked under
// orphand-forkwait.so:
//
//   - old: the original daemon's mechanism (testdata/oldpoll.c): a sweep
//     every 2 s finds the parent gone and sends each child SIGINT — only
//     the child: its own children live on (old-grandchildren-left counts
//     them per round);
//   - compat: the agent's compatibility socket: the parent's pidfd becomes
//     readable, and each child's group is killed through its cgroup,
//     grandchildren included (compat-all-ms times those too).
//
// Reported: medians (old-ms, compat-ms) and their ratio. ns/op is
// meaningless (it includes the setup).
func BenchmarkParentDeath(b *testing.B) {
	const children, rounds = 10, 20
	p := progs(b)
	a := startAgent(b, "")
	c := a.client(b)
	old := startOldDaemon(b, p)
	var oldT, newT, newAll []time.Duration
	left := 0
	for range b.N {
		for i := range rounds {
			sides := []func(){
				func() {
					r := parentDeath(b, p, old.sock, children, false, func(*family) { ping(b, old.sock) })
					oldT, left = append(oldT, r.children), left+r.left
				},
				func() {
					base := a.compatStatus(b, c).Records
					r := parentDeath(b, p, a.compat, children, true, func(f *family) { a.waitRecords(b, c, base+f.records()) })
					if r.left > 0 {
						b.Fatalf("the agent left %d grandchildren alive", r.left)
					}
					newT, newAll = append(newT, r.children), append(newAll, r.all)
				},
			}
			if i%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			sides[0]()
			sides[1]()
		}
	}
	oldMs, newMs := ms(oldT, 50), ms(newT, 50)
	b.ReportMetric(oldMs, "old-ms")
	b.ReportMetric(newMs, "compat-ms")
	b.ReportMetric(ms(newAll, 50), "compat-all-ms")
	b.ReportMetric(ms(newT, 100), "compat-max-ms")
	b.ReportMetric(ms(oldT, 0), "old-min-ms")
	b.ReportMetric(ms(oldT, 100), "old-max-ms")
	b.ReportMetric(oldMs/newMs, "ratio")
	b.ReportMetric(float64(left)/float64(len(oldT)), "old-grandchildren-left")
	b.Logf("parent death, %d children with a grandchild each, %d rounds: old sweep median %.1f ms (%.1f–%.1f), compat socket median %.2f ms (max %.2f), every grandchild %.2f ms; the old daemon left %d of %d grandchildren alive",
		children, len(oldT), oldMs, ms(oldT, 0), ms(oldT, 100), newMs, ms(newT, 100), ms(newAll, 50), left, children*len(oldT))
}

// ms is the p-th percentile (0..100) of samples, in milliseconds.
func ms(samples []time.Duration, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return float64(s[int(p/100*float64(len(s)-1))]) / float64(time.Millisecond)
}

// forkTimes runs forkbench for n forks with environ and returns what fork()
// and waitpid() cost each time.
func forkTimes(b *testing.B, p programs, environ []string, n int) (fork, wait []time.Duration) {
	b.Helper()
	cmd := exec.Command(p.forkbench, strconv.Itoa(n))
	cmd.Env = environ
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("forkbench: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var f, w int64
		if _, err := fmt.Sscanf(l, "fork %d wait %d", &f, &w); err != nil {
			b.Fatalf("forkbench said %q: %v", l, err)
		}
		fork, wait = append(fork, time.Duration(f)), append(wait, time.Duration(w))
	}
	return fork, wait
}

// BenchmarkForkOverhead measures what fork() and waitpid() cost a program
// under orphand-forkwait.so, sending its records to the agent's
// compatibility socket, against the same calls without the library, in
// interleaved batches. Reported: medians and 90th percentiles in µs, and
// the differences (the overhead: one connect, write and close per call).
func BenchmarkForkOverhead(b *testing.B) {
	const batches, perBatch = 10, 200
	p := progs(b)
	a := startAgent(b, "")
	c := a.client(b)
	var plainF, plainW, libF, libW []time.Duration
	for range b.N {
		for i := range batches {
			sides := []func(){
				func() {
					f, w := forkTimes(b, p, env(""), perBatch)
					plainF, plainW = append(plainF, f...), append(plainW, w...)
				},
				func() {
					f, w := forkTimes(b, p, env(a.compat, "LD_PRELOAD="+p.forkwait), perBatch)
					libF, libW = append(libF, f...), append(libW, w...)
				},
			}
			if i%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			sides[0]()
			sides[1]()
		}
	}
	st := a.waitRecords(b, c, uint64(2*len(libF)))
	us := func(s []time.Duration, q float64) float64 { return ms(s, q) * 1000 }
	b.ReportMetric(us(plainF, 50), "fork-plain-p50-us")
	b.ReportMetric(us(libF, 50), "fork-preload-p50-us")
	b.ReportMetric(us(libF, 50)-us(plainF, 50), "fork-overhead-p50-us")
	b.ReportMetric(us(libF, 90), "fork-preload-p90-us")
	b.ReportMetric(us(plainW, 50), "wait-plain-p50-us")
	b.ReportMetric(us(libW, 50), "wait-preload-p50-us")
	b.ReportMetric(us(libW, 50)-us(plainW, 50), "wait-overhead-p50-us")
	b.Logf("%d forks each way: fork() p50 %.1f µs plain, %.1f µs under the library (p90 %.1f); waitpid() p50 %.1f µs plain, %.1f µs under it; the agent handled %d records (%d groups registered, %d refused: children gone before their REGISTER was handled)",
		len(libF), us(plainF, 50), us(libF, 50), us(libF, 90), us(plainW, 50), us(libW, 50), st.Records, st.Registered, st.Refused)
}
