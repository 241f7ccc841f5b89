package pid1

import (
	"fmt"
	"strings"
	"syscall"
	"time"
)

// notForwarded are the catchable signals init does not forward, and why:
//
//   - SIGCHLD: a child of init changed state; init reaps.
//   - SIGURG: the Go runtime sends it to its own threads to preempt
//     goroutines, and os/signal cannot tell those from one sent by kill(2).
//   - SIGPIPE: init's own write to a closed stderr raises it.
//   - SIGTTIN, SIGTTOU: the terminal's job control aimed at init itself (a
//     background init touching the terminal); forwarding them would stop
//     CMD instead. tini does the same.
//   - SIGPROF: the Go runtime's CPU profiler owns it. Every thread of init
//     keeps it unblocked and the runtime's handler consumes it before
//     os/signal could see it, so init cannot receive it to pass it on.
//   - 32, 33, 34: reserved for the C library's threads (glibc uses 32 and
//     33, musl 34; glibc's SIGRTMIN is therefore 34). The Go runtime uses 33
//     itself and leaves 32 and 34 at their default action.
//
// SIGKILL and SIGSTOP cannot be caught at all.
var notForwarded = map[syscall.Signal]bool{
	syscall.SIGCHLD: true,
	syscall.SIGURG:  true,
	syscall.SIGPIPE: true,
	syscall.SIGTTIN: true,
	syscall.SIGTTOU: true,
	syscall.SIGPROF: true,
	32:              true,
	33:              true,
	34:              true,
	syscall.SIGKILL: true,
	syscall.SIGSTOP: true,
}

// Forwarded reports whether init forwards sig to CMD (before any rewrite).
func Forwarded(sig syscall.Signal) bool { return validSignal(sig) && !notForwarded[sig] }

// caught reports whether init asks os/signal for sig: every forwarded
// signal, SIGCHLD (to reap) and SIGPIPE, SIGTTIN, SIGTTOU (caught so that
// they neither kill nor stop init, and dropped).
func caught(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGTTIN, syscall.SIGTTOU:
		return true
	}
	return Forwarded(sig)
}

// caughtSignals lists the signals init asks os/signal for (see caught).
func caughtSignals() []syscall.Signal {
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if caught(s) {
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
	from, err = ParseSignal(a)
	if err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %w", spec, err)
	}
	if !Forwarded(from) {
		return 0, 0, fmt.Errorf("rewrite %q: %s is never forwarded, so it cannot be rewritten", spec, SignalName(from))
	}
	if strings.TrimSpace(b) == "0" {
		return from, 0, nil
	}
	to, err = ParseSignal(b)
	if err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %w", spec, err)
	}
	return from, to, nil
}

// rewritten returns what a received signal is forwarded as: Rewrite's
// target, 0 when it is dropped, or the signal itself.
func rewritten(rw map[syscall.Signal]syscall.Signal, sig syscall.Signal) syscall.Signal {
	if to, ok := rw[sig]; ok {
		return to
	}
	return sig
}

// escalation decides when a SIGINT means "stop waiting": a SIGINT that
// arrives within the window after an earlier SIGINT or SIGTERM. A window of
// 0 (no grace at all) lets any second SIGINT escalate. It is fed the
// signals as they are forwarded, after --rewrite: what counts is what CMD
// is asked to do, not what init happened to receive.
type escalation struct {
	window time.Duration
	first  time.Time // the first SIGINT or SIGTERM; zero before
}

// observe records a forwarded signal and reports whether it escalates.
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
