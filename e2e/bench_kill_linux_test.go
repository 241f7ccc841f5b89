//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// BenchmarkKillLatency measures, side by side and interleaved, how long a
// group of N processes takes to be empty
//
//   - agent: from the spawner's SIGKILL to "populated 0" — the agent sees
//     the exit through the spawner's pidfd, writes cgroup.kill and waits
//     for empty;
//   - raw: from writing cgroup.kill ourselves to "populated 0" — the floor.
//
// "populated 0" is seen the same way on both sides: inotify on a
// cgroup.events armed before the kill, re-read at each wake-up. On the
// agent side it is the file of the agent's cgroup root, whose only
// populated group is the one killed: the group's own file is no use, as
// the kernel rate-limits its notifications and drops a delayed one when
// the agent removes the emptied cgroup first. The arrival of the agent's
// killed event is reported too (agent-event-arrival-ms), and the agent's
// own figure from that event (agent-event-ms: trigger seen to the event).
//
// The same Perl spawner forks the same N-1 children on both sides; each
// sample pair alternates which side goes first. Reported: the medians of
// both sides (agent-ms, raw-ms), their ratio, their difference, and the
// agent's own figure from its killed event (agent-event-ms: trigger seen
// to empty). ns/op is meaningless here (it includes the setup).
func BenchmarkKillLatency(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchKill(b, n) })
	}
}

// killSamples is the number of sample pairs per size.
var killSamples = map[int]int{1: 100, 100: 120, 1000: 24}

// settle is the pause before each timed kill: the kernel rate-limits
// cgroup.events notifications to one per 10 ms and delays the next, so a
// kill within 10 ms of the group's last change (a process moved or born
// into it) would time that delay, on both sides, rather than the kill.
const settle = 25 * time.Millisecond

func benchKill(b *testing.B, n int) {
	testutil.RequireRoot(b)
	testutil.RequireCommand(b, "perl")
	startBenchReaper(b)
	a := startAgent(b, "")
	c := a.client(b)
	agentEvents := a.followKilled(b)
	rawRoot := filepath.Join(a.mount, run.CgroupPrefix+"raw-"+testutil.RandHex(4))
	if err := os.Mkdir(rawRoot, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = testutil.RemoveCgroupTree(rawRoot) })

	var agentT, rawT, exitT, arrivalT []time.Duration
	var reported []float64
	for range b.N {
		for i := range killSamples[n] {
			sides := []func(){
				func() {
					r := killViaAgent(b, a, c, agentEvents, n)
					agentT, exitT, reported = append(agentT, r.empty), append(exitT, r.exit), append(reported, r.eventMs)
					arrivalT = append(arrivalT, r.arrival)
				},
				func() { rawT = append(rawT, killRaw(b, rawRoot, n)) },
			}
			if i%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			sides[0]()
			sides[1]()
		}
	}
	agentMs, rawMs := percentile(agentT, 50), percentile(rawT, 50)
	b.ReportMetric(agentMs, "agent-ms")
	b.ReportMetric(rawMs, "raw-ms")
	b.ReportMetric(agentMs/rawMs, "ratio")
	// The median of each pair's own ratio is steadier on a shared machine:
	// both halves of a pair ran within a second of each other.
	paired := make([]float64, len(agentT))
	for i := range agentT {
		paired[i] = float64(agentT[i]) / float64(rawT[i])
	}
	b.ReportMetric(percentileF(paired, 50), "paired-ratio")
	b.ReportMetric(agentMs-rawMs, "diff-ms")
	b.ReportMetric(percentileF(reported, 50), "agent-event-ms")
	b.ReportMetric(percentile(agentT, 90), "agent-p90-ms")
	b.ReportMetric(percentile(rawT, 90), "raw-p90-ms")
	b.ReportMetric(percentile(exitT, 50), "spawner-exit-ms")
	b.ReportMetric(percentile(arrivalT, 50), "agent-event-arrival-ms")
}

// agentKill is what one kill through the agent took, from the SIGKILL.
type agentKill struct {
	empty   time.Duration // to populated 0
	exit    time.Duration // to the spawner's pidfd being readable (its exit)
	arrival time.Duration // to the killed event's arrival
	eventMs float64       // the agent's own figure in that event
}

// killViaAgent registers a spawner, lets it fork n-1 children inside its
// group, kills it with SIGKILL and times until the group is empty.
// The spawner's exit is timed too, as its pidfd shows it (the agent's
// trigger is the same readiness).
func killViaAgent(b *testing.B, a *agent, c *ipc.Client, events *killedLog, n int) agentKill {
	s := startSpawner(b, n-1, -1)
	defer s.end()
	g, err := c.Register(context.Background(), ipc.RegisterOptions{Pid: s.cmd.Process.Pid, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	s.fork(b)
	w, err := armEmpty(filepath.Join(a.mount, a.root))
	if err != nil {
		b.Fatal(err)
	}
	defer w.close()
	time.Sleep(settle)
	exited := make(chan time.Time, 1)
	go func() { _ = s.proc.Wait(context.Background()); exited <- time.Now() }()
	start := time.Now()
	if err := s.proc.Signal(syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	if err := w.wait(goneTimeout); err != nil {
		b.Fatal(err)
	}
	empty := time.Since(start)
	ev := events.wait(b, g.ID)
	return agentKill{empty: empty, exit: (<-exited).Sub(start), arrival: ev.at.Sub(start), eventMs: ev.ms}
}

// killRaw puts the same tree in a cgroup of our own and times cgroup.kill
// to empty.
func killRaw(b *testing.B, root string, n int) time.Duration {
	dir := filepath.Join(root, "g"+testutil.RandHex(4))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = testutil.RemoveCgroupTree(dir) }()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	s := startSpawner(b, n-1, fd)
	unix.Close(fd)
	defer s.end()
	s.fork(b)
	w, err := armEmpty(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer w.close()
	time.Sleep(settle)
	start := time.Now()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		b.Fatal(err)
	}
	if err := w.wait(goneTimeout); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// killedLog collects the agent's killed events.
type killedLog struct {
	mu   sync.Mutex
	got  map[string]killed
	cond chan struct{}
}

// killed is one killed event: when it arrived, and the agent's own figure.
type killed struct {
	at time.Time
	ms float64
}

func (a *agent) followKilled(b *testing.B) *killedLog {
	l := &killedLog{got: map[string]killed{}, cond: make(chan struct{})}
	c := a.client(b)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Subscribe(ctx, "")
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			if ev.Event == ipc.EventKilled && ev.Millis != nil {
				at := time.Now()
				l.mu.Lock()
				l.got[ev.Group] = killed{at: at, ms: *ev.Millis}
				close(l.cond)
				l.cond = make(chan struct{})
				l.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	return l
}

func (l *killedLog) wait(b *testing.B, group string) killed {
	timeout := time.After(goneTimeout)
	for {
		l.mu.Lock()
		k, ok := l.got[group]
		cond := l.cond
		l.mu.Unlock()
		if ok {
			return k
		}
		select {
		case <-cond:
		case <-timeout:
			b.Fatalf("no killed event for group %s", group)
		}
	}
}
