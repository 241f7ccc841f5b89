package pid1

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/orphand/orphand/internal/signame"
)

// notForwarded are the catchable signals init keeps for itself, and why:
//
//   - SIGCHLD: a child of init changed state; init reaps.
//   - SIGURG: the Go runtime sends it to its own threads to preempt
//     goroutines, and os/signal cannot tell those from one sent by kill(2).
//   - SIGPIPE: init's own write to a closed stderr raises it.
//   - SIGTTIN, SIGTTOU: the terminal's job control aimed at init itself (a
//     background init touching the terminal); forwarding them would stop
//     CMD instead. tini does the same.
//   - 32 and 33: reserved by glibc for its threads (SIGCANCEL, SIGSETXID).
//
// SIGKILL and SIGSTOP cannot be caught at all.
var notForwarded = map[syscall.Signal]bool{
	syscall.SIGCHLD: true,
	syscall.SIGURG:  true,
	syscall.SIGPIPE: true,
	syscall.SIGTTIN: true,
	syscall.SIGTTOU: true,
	32:              true,
	33:              true,
	syscall.SIGKILL: true,
	syscall.SIGSTOP: true,
}

// Forwarded reports whether init forwards sig to CMD (before any rewrite).
func Forwarded(sig syscall.Signal) bool { return validSignal(sig) && !notForwarded[sig] }

// caughtSignals lists every signal init asks os/signal for: the forwarded
// ones, SIGCHLD (to reap) and SIGPIPE, SIGTTIN, SIGTTOU (caught so that they
// neither kill nor stop init, and dropped).
func caughtSignals() []os.Signal {
	var out []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		switch {
		case Forwarded(s), s == syscall.SIGCHLD, s == syscall.SIGPIPE, s == syscall.SIGTTIN, s == syscall.SIGTTOU:
			out = append(out, s)
		}
	}
	return out
}

// ParseRewrite parses a --rewrite value "FROM:TO", as dumb-init's
// --rewrite: FROM is a signal name or number, TO likewise or 0 to drop FROM
// instead of forwarding it.
func ParseRewrite(spec string) (from, to syscall.Signal, err error) {
	a, b, ok := strings.Cut(spec, ":")
	if !ok {
		return 0, 0, fmt.Errorf("rewrite %q: want FROM:TO, e.g. TERM:QUIT, 15:3, or INT:0 to drop SIGINT", spec)
	}
	from, err = signame.Parse(a)
	if err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %w", spec, err)
	}
	if !Forwarded(from) {
		return 0, 0, fmt.Errorf("rewrite %q: %s is never forwarded, so it cannot be rewritten", spec, signame.Name(from))
	}
	if strings.TrimSpace(b) == "0" {
		return from, 0, nil
	}
	to, err = signame.Parse(b)
	if err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %w", spec, err)
	}
	return from, to, nil
}

// escalation decides when a SIGINT means "stop waiting": a SIGINT that
// arrives within the window after an earlier SIGINT or SIGTERM. A window of
// 0 (no grace at all) lets any second SIGINT escalate.
type escalation struct {
	window time.Duration
	first  time.Time // the first SIGINT or SIGTERM; zero before
}

// observe records a received signal (one that is not dropped) and reports
// whether it escalates.
func (e *escalation) observe(sig syscall.Signal, now time.Time) bool {
	if sig != syscall.SIGINT && sig != syscall.SIGTERM {
		return false
	}
	if e.first.IsZero() {
		e.first = now
		return false
	}
	return sig == syscall.SIGINT && (e.window == 0 || now.Sub(e.first) <= e.window)
}
