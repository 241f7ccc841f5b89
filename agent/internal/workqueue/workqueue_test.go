package workqueue

import (
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestWorkQueue(t *testing.T) {
	q := New()
	q.Start(3)
	var ran, running, most atomic.Int64
	var pushers sync.WaitGroup
	for range 10 {
		pushers.Go(func() {
			for range 100 {
				q.Push(func() {
					n := running.Add(1)
					for {
						m := most.Load()
						if n <= m || most.CompareAndSwap(m, n) {
							break
						}
					}
					ran.Add(1)
					running.Add(-1)
				})
			}
		})
	}
	gate := make(chan struct{})
	q.Async(func() {
		<-gate
		q.Push(func() { ran.Add(1) }) // a continuation pushed later still runs
	})
	pushers.Wait()
	close(gate)
	q.Wait()
	q.Close()
	if ran.Load() != 1001 {
		t.Fatalf("ran %d jobs, want 1001", ran.Load())
	}
	if most.Load() > 3 {
		t.Fatalf("%d jobs ran at once on 3 workers", most.Load())
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
