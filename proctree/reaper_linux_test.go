package proctree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orphand/orphand/internal/testutil"
)

func init() {
	helpers["exec-loop"] = helperExecLoop
	helpers["reaper-basics"] = helperReaperBasics
	helpers["reaper-backlog"] = helperReaperBacklog
}

// TestReaperExecLoop is the os/exec safety loop: over a thousand
// exec.Command runs with a mix of exit codes while the reaper runs and
// orphans land on it. Every code must be right (a stolen status shows up
// as a wrong code or "no child processes"), every orphan must be reaped
// and reported once, and the reaper must report nothing else.
func TestReaperExecLoop(t *testing.T) {
	runHelper(t, "exec-loop", 3*time.Minute, nil)
}

func TestReaperBasics(t *testing.T) { runHelper(t, "reaper-basics", 2*time.Minute, nil) }

func TestReaperBacklog(t *testing.T) { runHelper(t, "reaper-backlog", 2*time.Minute, nil) }

// A run of the loop: what to run and what it must end with.
type execCase struct {
	script string
	code   int            // exit code, when sig is 0
	sig    syscall.Signal // killed by this signal
	orphan bool           // prints the pid of an orphan that exits 7
}

var execCases = []execCase{
	{script: "exit 0"},
	{script: "exit 1", code: 1},
	{script: "exit 2", code: 2},
	{script: "exit 42", code: 42},
	{script: "exit 255", code: 255},
	{script: "kill -TERM $$", sig: syscall.SIGTERM},
	{script: "sh $ORPHAN 7 $REAPER &", orphan: true},
	{script: "exit 3", code: 3},
	{script: "setsid sh $ORPHAN 7 $REAPER &", orphan: true},
	{script: "(sh $ORPHAN 7 $REAPER &); exit 4", code: 4, orphan: true},
	{script: "(setsid sh $ORPHAN 7 $REAPER &)", orphan: true},
}

func helperExecLoop() error {
	defer goleakCheck()()
	orphanScript, err := filepath.Abs("testdata/orphan.sh")
	if err != nil {
		return err
	}
	os.Setenv("ORPHAN", orphanScript)
	os.Setenv("REAPER", strconv.Itoa(os.Getpid()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	statuses := make(chan ReapStatus, 16)
	r, err := StartReaper(ctx, ReaperConfig{EnableChildSubreaper: true, StatusChannel: statuses, Logger: discardLogger()})
	if err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		reaped  = map[int]int{} // pid -> times reported with status 7
		strange []string        // anything else the reaper reported
	)
	var collector sync.WaitGroup
	collector.Go(func() {
		for st := range statuses {
			mu.Lock()
			if st.Err == nil && st.WaitStatus.Exited() && st.WaitStatus.ExitStatus() == 7 {
				reaped[st.Pid]++
			} else {
				strange = append(strange, fmt.Sprintf("pid %d: %s, %v", st.Pid, describeStatus(st.WaitStatus), st.Err))
			}
			mu.Unlock()
		}
	})

	const runs, workers = 1200, 4
	orphans := map[int]int{}
	var errs []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < runs; i += workers {
				c := execCases[i%len(execCases)]
				pid, err := runCase(c)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("run %d (%q): %w", i, c.script, err))
				} else if c.orphan {
					orphans[pid]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d runs went wrong, first: %w", len(errs), runs, errors.Join(errs[:min(5, len(errs))]...))
	}
	n := 0
	for _, c := range orphans {
		n += c
	}
	// Wait until the reaper has reported every orphan.
	err = waitForErr(fmt.Sprintf("%d orphans to be reaped", n), time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		got := 0
		for _, c := range reaped {
			got += c
		}
		return got >= n
	})
	cancel()
	r.Wait()
	close(statuses)
	collector.Wait()
	if err != nil {
		var missing []int
		for pid := range orphans {
			if reaped[pid] == 0 {
				missing = append(missing, pid)
			}
		}
		zs, _ := zombieChildren()
		d, _ := Descendants(os.Getpid())
		return fmt.Errorf("%w: %d reported, missing %v, zombies %v, descendants %v, strange %v", err, len(reaped), missing[:min(10, len(missing))], zs, d, strange)
	}
	if len(strange) > 0 {
		return fmt.Errorf("the reaper reported %d statuses that were not orphans', e.g. %v", len(strange), strange[:min(5, len(strange))])
	}
	for pid, c := range orphans {
		if reaped[pid] != c {
			return fmt.Errorf("orphan %d: reported %d times, want %d", pid, reaped[pid], c)
		}
	}
	if len(reaped) != len(orphans) {
		return fmt.Errorf("reaped %d distinct pids, want %d", len(reaped), len(orphans))
	}
	if zs, err := zombieChildren(); err != nil || len(zs) > 0 {
		return fmt.Errorf("zombies left: %v, %w", zs, err)
	}
	if r.Dropped() != 0 {
		return fmt.Errorf("%d statuses dropped", r.Dropped())
	}
	return nil
}

// runCase runs one case and checks its outcome; for an orphan it returns
// the orphan's pid.
func runCase(c execCase) (int, error) {
	cmd := exec.Command("sh", "-c", c.script)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, err // e.g. "waitid: no child processes": a stolen status
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return 0, fmt.Errorf("no wait status")
	case c.sig != 0 && (!ws.Signaled() || ws.Signal() != c.sig):
		return 0, fmt.Errorf("ended with %s, want signal %v", describeStatus(ws), c.sig)
	case c.sig == 0 && (!ws.Exited() || ws.ExitStatus() != c.code):
		return 0, fmt.Errorf("ended with %s, want exit %d", describeStatus(ws), c.code)
	}
	if !c.orphan {
		return 0, nil
	}
	return strconv.Atoi(strings.TrimSpace(out.String()))
}

func helperReaperBasics() error {
	defer goleakCheck()()
	ctx := context.Background()
	log := discardLogger()

	// Refusals.
	if _, err := StartReaper(ctx, ReaperConfig{Logger: log}); !errors.Is(err, ErrNotPid1) {
		return fmt.Errorf("start in a non-subreaper = %w, want ErrNotPid1", err)
	}
	if _, err := StartReaper(ctx, ReaperConfig{DisablePid1Check: true, Options: syscall.WUNTRACED}); !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("start with WUNTRACED = %w, want EINVAL", err)
	}
	saved := pidfdProbe
	pidfdProbe = func() error { return os.ErrInvalid }
	_, err := StartReaper(ctx, ReaperConfig{DisablePid1Check: true})
	pidfdProbe = saved
	if !errors.Is(err, ErrNoPidfd) {
		return fmt.Errorf("start without pidfds = %w, want ErrNoPidfd", err)
	}

	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	statuses := make(chan ReapStatus, 64)
	r, err := StartReaper(ctx1, ReaperConfig{EnableChildSubreaper: true, Options: syscall.WNOHANG | 0x40000000 /* __WALL */, StatusChannel: statuses, Logger: log})
	if err != nil {
		return err
	}
	if _, err := StartReaper(ctx, ReaperConfig{DisablePid1Check: true}); !errors.Is(err, ErrReaperRunning) {
		cancel1()
		return fmt.Errorf("second reaper = %w, want ErrReaperRunning", err)
	}
	err = reaperScenarios(r, statuses)
	cancel1()
	r.Wait()
	if err != nil {
		return err
	}

	// A reaper that selects one pid reaps that one only.
	a, b := forkExit(0), forkExit(0)
	if err := waitZombies(a, b); err != nil {
		return err
	}
	ctx2, cancel2 := context.WithCancel(ctx)
	statuses2 := make(chan ReapStatus, 4)
	r2, err := StartReaper(ctx2, ReaperConfig{Pid: a, StatusChannel: statuses2, Logger: log})
	if err != nil {
		cancel2()
		return fmt.Errorf("restart after stop: %w", err)
	}
	st, err := nextStatus(statuses2)
	cancel2()
	r2.Wait()
	if err != nil || st.Pid != a {
		return fmt.Errorf("reaper for pid %d reported %+v, %w", a, st, err)
	}
	if !waitable(b, 0) {
		return fmt.Errorf("pid %d, not selected, was reaped", b)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(b, &ws, 0, nil); err != nil {
		return err
	}
	return nil
}

// reaperScenarios runs against a reaper that reports to statuses.
func reaperScenarios(r *Reaper, statuses chan ReapStatus) error {
	// 1. A child started by os/exec and never waited for is owned: not
	// reaped while os/exec holds its pidfd, reaped once Release drops it
	// (found by the deferred recheck: no SIGCHLD comes then).
	cmd := exec.Command("sh", "-c", "exit 9")
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := waitZombies(cmd.Process.Pid); err != nil {
		return err
	}
	if err := noStatus(statuses, 100*time.Millisecond); err != nil {
		return fmt.Errorf("owned zombie: %w", err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Process.Release(); err != nil {
		return err
	}
	if err := expectStatus(statuses, pid, 9); err != nil {
		return fmt.Errorf("released zombie: %w", err)
	}

	// 2. A child forked without a pidfd but claimed is left to its owner;
	// an unclaimed one is reaped.
	c, err := ClaimChild(func() (int, error) { return forkExitErr(5) })
	if err != nil {
		return err
	}
	if err := waitZombies(c.Pid()); err != nil {
		return err
	}
	unclaimed := forkExit(6)
	if err := expectStatus(statuses, unclaimed, 6); err != nil {
		return fmt.Errorf("unclaimed child: %w", err)
	}
	if !waitable(c.Pid(), 0) {
		return fmt.Errorf("claimed child %d was reaped", c.Pid())
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(c.Pid(), &ws, 0, nil); err != nil || ws.ExitStatus() != 5 {
		return fmt.Errorf("owner's wait for the claimed child: %w, %s", err, describeStatus(ws))
	}
	c.Release()
	c.Release()

	// 3. KillDescendants hands reaping to the running reaper, whose
	// channel then carries the statuses.
	tree := exec.Command("sh", "-c", "sleep 60 & sleep 60 & exit 0")
	if err := tree.Run(); err != nil {
		return err
	}
	if err := waitForErr("two orphaned sleeps", 10*time.Second, func() bool {
		d, _ := Descendants(os.Getpid())
		return len(d) == 2
	}); err != nil {
		return err
	}
	n, err := KillDescendants(context.Background(), syscall.SIGKILL)
	if err != nil || n != 2 {
		return fmt.Errorf("KillDescendants = %d, %w; want 2", n, err)
	}
	for range 2 {
		st, err := nextStatus(statuses)
		if err != nil {
			return err
		}
		if !st.WaitStatus.Signaled() || st.WaitStatus.Signal() != syscall.SIGKILL {
			return fmt.Errorf("killed orphan reported as %+v", st)
		}
	}
	if zs, err := zombieChildren(); err != nil || len(zs) > 0 {
		return fmt.Errorf("zombies left: %v, %w", zs, err)
	}
	return noStatus(statuses, 50*time.Millisecond)
}

// helperReaperBacklog fills StatusChannel and the backlog: the reaper keeps
// reaping, counts and logs each drop, and delivers what fits.
func helperReaperBacklog() error {
	defer goleakCheck()()
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	statuses := make(chan ReapStatus) // nobody reads until the end
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := StartReaper(ctx, ReaperConfig{EnableChildSubreaper: true, StatusChannel: statuses, StatusBacklog: 2, Logger: log})
	if err != nil {
		return err
	}
	const n = 5
	for i := range n {
		forkExit(10 + i)
	}
	if err := waitForErr("5 reaps", time.Minute, func() bool { return r.Reaped() == n }); err != nil {
		return err
	}
	if zs, _ := zombieChildren(); len(zs) > 0 {
		return fmt.Errorf("zombies left while the channel was full: %v", zs)
	}
	if r.Dropped() != n-2 {
		return fmt.Errorf("Dropped = %d, want %d", r.Dropped(), n-2)
	}
	for range 2 {
		if _, err := nextStatus(statuses); err != nil {
			return err
		}
	}
	cancel()
	r.Wait()
	logMu.Lock()
	defer logMu.Unlock()
	if c := strings.Count(logs.String(), "dropped a status"); c != n-2 {
		return fmt.Errorf("%d drops logged, want %d:\n%s", c, n-2, logs.String())
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// forkExit starts a child without a pidfd (syscall.ForkExec, as cgo code or
// old libraries do) that exits with code; it panics on failure (helpers
// only).
func forkExit(code int) int {
	pid, err := forkExitErr(code)
	if err != nil {
		panic(err)
	}
	return pid
}

func forkExitErr(code int) (int, error) {
	return syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit " + strconv.Itoa(code)}, &syscall.ProcAttr{Env: os.Environ()})
}

// waitZombies waits until each pid is an unreaped zombie child.
func waitZombies(pids ...int) error {
	for _, pid := range pids {
		if err := waitForErr(fmt.Sprintf("pid %d to exit", pid), 30*time.Second, func() bool { return waitable(pid, 0) }); err != nil {
			return err
		}
	}
	return nil
}

func nextStatus(c <-chan ReapStatus) (ReapStatus, error) {
	select {
	case st := <-c:
		return st, nil
	case <-time.After(30 * time.Second):
		return ReapStatus{}, errors.New("no status within 30s")
	}
}

func expectStatus(c <-chan ReapStatus, pid, code int) error {
	st, err := nextStatus(c)
	if err != nil {
		return fmt.Errorf("waiting for pid %d: %w", pid, err)
	}
	if st.Pid != pid || !st.WaitStatus.Exited() || st.WaitStatus.ExitStatus() != code {
		return fmt.Errorf("got %+v (%s), want pid %d exit %d", st, describeStatus(st.WaitStatus), pid, code)
	}
	return nil
}

func noStatus(c <-chan ReapStatus, d time.Duration) error {
	select {
	case st := <-c:
		return fmt.Errorf("unexpected status %+v (%s)", st, describeStatus(st.WaitStatus))
	case <-time.After(d):
		return nil
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// goleakCheck returns a function that panics when goroutines leaked; for
// helpers, which have no *testing.T (the panic fails the helper).
func goleakCheck() func() {
	return func() {
		if err := goleak.Find(); err != nil {
			panic(err)
		}
	}
}

func TestStatusQueue(t *testing.T) {
	q := statusQueue{max: 3}
	for i := range 3 {
		if !q.push(ReapStatus{Pid: i}) {
			t.Fatalf("push %d refused", i)
		}
	}
	if q.push(ReapStatus{Pid: 3}) {
		t.Fatal("push beyond max accepted")
	}
	if p := q.pop().Pid; p != 0 {
		t.Fatalf("pop = %d, want 0", p)
	}
	if !q.push(ReapStatus{Pid: 4}) {
		t.Fatal("push after pop refused")
	}
	for _, want := range []int{1, 2, 4} {
		if q.peek().Pid != want || q.pop().Pid != want {
			t.Fatalf("want %d", want)
		}
	}
	if q.len() != 0 || q.buf != nil {
		t.Fatalf("empty queue keeps %d, %v", q.len(), q.buf)
	}
}

// TestReaperSurvivesClosedStatusChannel runs a PID 1 (in a new pid
// namespace) whose reader closes StatusChannel, once while statuses are
// queued for it and once while it is empty, as go-reaper's examples do: the
// reaper must not panic with "send on closed channel", and must go on
// reaping.
func TestReaperSurvivesClosedStatusChannel(t *testing.T) {
	testutil.RequireRoot(t)
	unshare := testutil.RequireCommand(t, "unshare")
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child", testbinPath(t), "closed-status")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ok\n") || strings.Contains(string(out), "panic") {
		t.Fatalf("output:\n%s", out)
	}
	if c := strings.Count(string(out), "StatusChannel was closed by its reader"); c != 2 {
		t.Errorf("the closed channel was reported %d times, want once per reaper:\n%s", c, out)
	}
}

// TestGoReapLogsItsError runs go-reaper's idiom, `go proctree.Reap()`, in a
// process that is neither PID 1 nor a subreaper: the goroutine discards
// Reap's error, which must therefore reach the log.
func TestGoReapLogsItsError(t *testing.T) {
	out, err := exec.Command(testbinPath(t), "go-reap").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"not reaping orphaned children", "not PID 1 nor a child subreaper", "EnableChildSubreaper"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("log does not say %q:\n%s", want, out)
		}
	}
}

func TestTrySendToClosedChannel(t *testing.T) {
	ch := make(chan ReapStatus, 1)
	var logs bytes.Buffer
	r := &Reaper{cfg: ReaperConfig{StatusChannel: ch}, log: slog.New(slog.NewTextHandler(&logs, nil)), queue: statusQueue{max: 4}}
	r.queue.push(ReapStatus{Pid: 7})
	close(ch)
	if r.trySend(ReapStatus{Pid: 8}) {
		t.Fatal("a closed channel took a status")
	}
	if !r.closed || r.queue.len() != 0 || r.Dropped() != 1 {
		t.Fatalf("closed %v, queued %d, dropped %d; want true, 0, 1", r.closed, r.queue.len(), r.Dropped())
	}
	r.deliver(ReapStatus{Pid: 9}) // must neither panic nor queue
	if r.queue.len() != 0 || r.Reaped() != 1 {
		t.Fatalf("after close: queued %d, reaped %d", r.queue.len(), r.Reaped())
	}
	if c := strings.Count(logs.String(), "closed by its reader"); c != 1 {
		t.Errorf("logged %d times, want once:\n%s", c, logs.String())
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "boom") {
			t.Errorf("another panic was swallowed or changed: %v", p)
		}
	}()
	sendOnClosed("boom")
}
