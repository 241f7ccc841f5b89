// Package signame converts between signal names and numbers the way users
// write them: "SIGTERM", "TERM", "term", "15", and real-time signals
// "SIGRTMIN+3".
//
// The names themselves are golang.org/x/sys/unix's ([unix.SignalNum],
// [unix.SignalName]): this package keeps only what unix lacks and users
// type — the SIG prefix left out and any case, the aliases IOT, CLD and
// (Linux) POLL, plain numbers, and the real-time signals, which unix does
// not name at all. Real-time names follow glibc's numbering (SIGRTMIN is
// 34: glibc reserves 32 and 33), as kill(1) and systemd show them.
package signame

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sigRTMin and sigRTMax are the real-time signal bounds seen by programs
// linked with glibc (which reserves 32 and 33 for itself).
const (
	sigRTMin = 34
	sigRTMax = 64
)

// aliases are the second names of signals, accepted but never shown: unix
// knows each signal by its preferred name only.
var aliases = map[string]syscall.Signal{"IOT": syscall.SIGIOT, "CLD": syscall.SIGCHLD}

// Parse returns the signal a user named. It accepts a name with or without
// the SIG prefix in any case, SIGRTMIN+n / SIGRTMAX-n, and a number 1..64.
func Parse(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("signal %d out of range 1..%d", n, sigRTMax)
		}
		return syscall.Signal(n), nil
	}
	t = strings.TrimPrefix(t, "SIG")
	if sig := unix.SignalNum("SIG" + t); sig != 0 {
		return sig, nil
	}
	if sig, ok := aliases[t]; ok {
		return sig, nil
	}
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"RTMIN", sigRTMin, 1}, {"RTMAX", sigRTMax, -1}} {
		rest, ok := strings.CutPrefix(t, rt.prefix)
		if !ok {
			continue
		}
		off := 0
		if rest != "" {
			op := rest[0]
			n, err := strconv.Atoi(rest[1:])
			if err != nil || n < 0 || (op != '+' && op != '-') || (op == '+') != (rt.sign > 0) {
				break
			}
			off = n * rt.sign
		}
		if v := rt.base + off; v >= sigRTMin && v <= sigRTMax {
			return syscall.Signal(v), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q (use a name like TERM or SIGKILL, or a number 1..%d)", s, sigRTMax)
}

// Name returns the conventional name of sig, such as "SIGTERM" or
// "SIGRTMIN+2"; an unknown number is returned as its decimal string.
func Name(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	switch {
	case int(sig) == sigRTMin:
		return "SIGRTMIN"
	case int(sig) > sigRTMin && int(sig) < sigRTMax:
		return fmt.Sprintf("SIGRTMIN+%d", int(sig)-sigRTMin)
	case int(sig) == sigRTMax:
		return "SIGRTMAX"
	}
	return strconv.Itoa(int(sig))
}
