// Package workqueue runs jobs on a fixed number of workers, for the
// agent's kills: a write to cgroup.kill or an rmdir blocks in the kernel
// for tens of milliseconds on big groups, and no more than n threads may
// block there at once. It knows nothing of groups.
package workqueue

import "sync"

// Queue runs jobs on a fixed number of workers. Pending jobs wait in a
// slice, not in goroutines: ten thousand spawners dying at once cost ten
// thousand small closures, not ten thousand goroutine stacks, and never
// more than n threads blocked in the kernel (a write to cgroup.kill, an
// rmdir).
type Queue struct {
	mu     sync.Mutex // a leaf lock; the agent pushes with its own mu held
	jobs   []func()
	closed bool
	wake   chan struct{} // capacity 1; closed by close

	workers sync.WaitGroup
	// pending counts jobs pushed and not finished, and goroutines started
	// by async that may still push: when it reaches zero, no job will run.
	pending sync.WaitGroup
}

// New returns a queue with no workers yet; Start starts them.
func New() *Queue { return &Queue{wake: make(chan struct{}, 1)} }

// Start runs n workers.
func (q *Queue) Start(n int) {
	for range n {
		q.workers.Go(q.work)
	}
}

// Push queues job. It must not be called after Close.
func (q *Queue) Push(job func()) {
	q.pending.Add(1)
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	q.mu.Unlock()
	q.signal()
}

// Async runs fn on a goroutine of its own, counted as pending: for a job
// that must wait (without holding a worker) before pushing its next step.
func (q *Queue) Async(fn func()) {
	q.pending.Add(1)
	go func() {
		defer q.pending.Done()
		fn()
	}()
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) work() {
	for {
		job, ok := q.pop()
		if !ok {
			return
		}
		job()
		q.pending.Done()
	}
}

// pop waits for a job; it returns false once the queue is closed and empty.
func (q *Queue) pop() (func(), bool) {
	for {
		q.mu.Lock()
		if len(q.jobs) > 0 {
			job := q.jobs[0]
			q.jobs[0] = nil
			q.jobs = q.jobs[1:]
			more := len(q.jobs) > 0
			if !more {
				q.jobs = nil // let the backing array go
			}
			q.mu.Unlock()
			if more {
				q.signal() // another worker may take the next one
			}
			return job, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.wake
	}
}

// Wait waits until no job is pending: every job pushed has finished, and
// every function started by Async has returned.
func (q *Queue) Wait() { q.pending.Wait() }

// Close stops the workers once the queue is empty and waits for them.
// Call it after Wait has returned.
func (q *Queue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.wake)
	}
	q.mu.Unlock()
	q.workers.Wait()
}
