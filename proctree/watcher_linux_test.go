package proctree

import (
	"errors"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// startSleepers starts n `sleep` processes, opened as *Process, all killed
// and reaped at cleanup.
func startSleepers(t *testing.T, n int) ([]*Process, []*exec.Cmd) {
	t.Helper()
	procs := make([]*Process, 0, n)
	cmds := make([]*exec.Cmd, 0, n)
	t.Cleanup(func() {
		for _, c := range cmds {
			killWait(c)
		}
		for _, p := range procs {
			p.Close()
		}
	})
	for range n {
		cmd := exec.Command("sleep", "120")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		p, err := Open(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	return procs, cmds
}

// TestWatcherThousands registers thousands of watches (several per process),
// cancels some, kills every process, and checks that each remaining watch
// fires exactly once and no cancelled one fires.
func TestWatcherThousands(t *testing.T) {
	defer goleak.VerifyNone(t)
	const nproc, per = 800, 3
	procs, _ := startSleepers(t, nproc)
	threadsBefore := countThreads(t)

	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fired := make([]atomic.Int32, nproc*per)
	var wg sync.WaitGroup
	cancels := make([]func(), nproc*per)
	for i, p := range procs {
		for j := range per {
			k := i*per + j
			wg.Add(1)
			cancels[k], err = w.Add(p, func() {
				if fired[k].Add(1) == 1 {
					wg.Done()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if w.Len() != nproc*per {
		t.Fatalf("Len = %d, want %d", w.Len(), nproc*per)
	}
	// Cancel one registration in three, and close the *Process of every
	// tenth: the watch holds its own pidfd.
	cancelled := 0
	for k := 0; k < nproc*per; k += 3 {
		cancels[k]()
		cancels[k]() // idempotent
		wg.Done()
		cancelled++
	}
	for i := 0; i < nproc; i += 10 {
		procs[i].Close()
	}
	if got := countThreads(t); got > threadsBefore+3 {
		t.Errorf("%d threads with %d watches, %d before: a watch costs a thread", got, w.Len(), threadsBefore)
	}
	for _, p := range procs {
		// Closed ones cannot be signalled through p; use a fresh handle.
		q, err := Open(p.Pid())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		q.Close()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("not every exit seen within a minute; %d watches left", w.Len())
	}
	if w.Len() != 0 {
		t.Errorf("Len = %d after every exit, want 0", w.Len())
	}
	for k := range fired {
		want := int32(1)
		if k%3 == 0 {
			want = 0
		}
		if got := fired[k].Load(); got != want {
			t.Fatalf("watch %d fired %d times, want %d", k, got, want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Add(procs[1], func() {}); !errors.Is(err, ErrWatcherClosed) {
		t.Fatalf("Add after Close = %v, want ErrWatcherClosed", err)
	}
}

// An already exited (zombie) process fires at once; Close with pending
// watches releases them without firing; onExit may cancel and add.
func TestWatcherExitedAndClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	procs, cmds := startSleepers(t, 3)
	if err := procs[0].Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := procs[0].Wait(ctxTimeout(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 3)
	var (
		mu         sync.Mutex // onExit may run before Add returns
		cancelSelf func()
	)
	mu.Lock()
	cancelSelf, err = w.Add(procs[0], func() {
		mu.Lock()
		defer mu.Unlock()
		cancelSelf() // allowed from onExit, and a no-op now
		if _, err := w.Add(procs[2], func() { got <- 2 }); err != nil {
			t.Error(err)
		}
		got <- 0
	})
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if i := <-got; i != 0 {
		t.Fatalf("got %d, want the zombie's watch", i)
	}
	if _, err := w.Add(procs[1], func() { got <- 1 }); err != nil {
		t.Fatal(err)
	}
	if w.Len() != 2 {
		t.Fatalf("Len = %d, want 2", w.Len())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	killWait(cmds[1])
	killWait(cmds[2])
	select {
	case i := <-got:
		t.Fatalf("watch %d fired after Close", i)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := w.Add(procs[1], nil); err == nil {
		t.Fatal("Add with nil onExit succeeded")
	}
}

func TestEpollID(t *testing.T) {
	for _, id := range []uint64{0, 1, 1<<32 - 1, 1 << 32, 1<<63 + 12345, ^uint64(0)} {
		var ev unix.EpollEvent
		setEpollID(&ev, id)
		if got := epollID(ev); got != id {
			t.Errorf("id %#x round-tripped to %#x", id, got)
		}
	}
}
