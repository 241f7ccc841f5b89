// Package ratelog keeps the log lines of refused callers from flooding the
// log: each uid and limit logs at most once a minute, with the count of
// the lines left out. It knows nothing of groups or of the protocol.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter keeps refusals from flooding the log: a caller that hits a limit
// costs nothing to try again, and thousands of identical lines a second
// would bury everything else (and journald would drop them). Each uid and
// limit logs at most once per Every, with the count it stood for. The zero
// value is ready to use and safe for concurrent use; its lock is a leaf.
type Limiter struct {
	mu   sync.Mutex
	last map[limitKey]*limitSeen
}

type limitKey struct {
	uid   uint32
	limit string
}

type limitSeen struct {
	at         time.Time
	suppressed int
}

// Every is how often one uid and limit may log; limitLogMax bounds the
// uids×limits remembered (past it, the oldest are forgotten).
const (
	Every       = time.Minute
	limitLogMax = 4096
)

// Log writes msg at level, with the attribute limit, unless the same uid
// hit the same limit less than Every ago, in which case it only counts it.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, uid uint32, limit, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if l.last == nil {
		l.last = map[limitKey]*limitSeen{}
	}
	k := limitKey{uid, limit}
	s := l.last[k]
	if s != nil && now.Sub(s.at) < Every {
		s.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := 0
	if s != nil {
		suppressed = s.suppressed
	}
	if len(l.last) >= limitLogMax {
		for k, s := range l.last {
			if now.Sub(s.at) >= Every {
				delete(l.last, k)
			}
		}
	}
	if len(l.last) < limitLogMax {
		l.last[k] = &limitSeen{at: now}
	}
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "same_since_last_logged", suppressed)
	}
	log.Log(context.Background(), level, msg, append(args, "limit", limit)...)
}
