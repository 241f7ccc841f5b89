package proctree

import "runtime"

// Delivery to ReaperConfig.StatusChannel, whose reader may close it.

// trySend offers st to StatusChannel without blocking, and reports whether
// the channel took it; a channel closed by its reader takes nothing more.
func (r *Reaper) trySend(st ReapStatus) (sent bool) {
	if r.closed {
		return false
	}
	defer func() {
		if sendOnClosed(recover()) {
			sent = false
			r.markClosed()
		}
	}()
	select {
	case r.cfg.StatusChannel <- st:
		return true
	default:
		return false
	}
}

// sendOnClosed reports whether p, a recovered panic value, is the panic of
// a send on a closed channel; any other panic goes on.
func sendOnClosed(p any) bool {
	if p == nil {
		return false
	}
	if err, ok := p.(runtime.Error); ok && err.Error() == "send on closed channel" {
		return true
	}
	panic(p)
}

// markClosed stops every delivery for good once the reader has closed
// StatusChannel, dropping what was queued for it.
func (r *Reaper) markClosed() {
	if r.closed {
		return
	}
	r.closed = true
	n := r.queue.len()
	for r.queue.len() > 0 {
		r.queue.pop()
	}
	r.drops.Add(uint64(n))
	r.log.Warn("proctree: reaper: StatusChannel was closed by its reader; reaping goes on, statuses are no longer sent", "dropped", n)
}
