package agent

import "sync"

// workQueue runs jobs on a fixed number of workers. Pending jobs wait in a
// slice, not in goroutines: ten thousand spawners dying at once cost ten
// thousand small closures, not ten thousand goroutine stacks, and never
// more than n threads blocked in the kernel (a write to cgroup.kill, an
// rmdir).
type workQueue struct {
	mu     sync.Mutex
	jobs   []func()
	closed bool
	wake   chan struct{} // capacity 1; closed by close

	workers sync.WaitGroup
	// pending counts jobs pushed and not finished, and goroutines started
	// by async that may still push: when it reaches zero, no job will run.
	pending sync.WaitGroup
}

func newWorkQueue() *workQueue { return &workQueue{wake: make(chan struct{}, 1)} }

// start runs n workers.
func (q *workQueue) start(n int) {
	for range n {
		q.workers.Go(q.work)
	}
}

// push queues job. It must not be called after close.
func (q *workQueue) push(job func()) {
	q.pending.Add(1)
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	q.mu.Unlock()
	q.signal()
}

// async runs fn on a goroutine of its own, counted as pending: for a job
// that must wait (without holding a worker) before pushing its next step.
func (q *workQueue) async(fn func()) {
	q.pending.Add(1)
	go func() {
		defer q.pending.Done()
		fn()
	}()
}

func (q *workQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *workQueue) work() {
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
func (q *workQueue) pop() (func(), bool) {
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

// close stops the workers once the queue is empty and waits for them.
// Call it after pending has reached zero.
func (q *workQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.wake)
	}
	q.mu.Unlock()
	q.workers.Wait()
}
