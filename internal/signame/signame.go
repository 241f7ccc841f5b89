// Package signame converts between signal names and numbers the way users
// write them: "SIGTERM", "TERM", "term", "15", and real-time signals
// "SIGRTMIN+3".
package signame

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// sigRTMin and sigRTMax are the real-time signal bounds seen by programs
// linked with glibc (which reserves 32 and 33 for itself).
const (
	sigRTMin = 34
	sigRTMax = 64
)

var names = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "ILL": syscall.SIGILL,
	"TRAP": syscall.SIGTRAP, "ABRT": syscall.SIGABRT, "IOT": syscall.SIGIOT, "BUS": syscall.SIGBUS,
	"FPE": syscall.SIGFPE, "KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "SEGV": syscall.SIGSEGV,
	"USR2": syscall.SIGUSR2, "PIPE": syscall.SIGPIPE, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM,
	"CHLD": syscall.SIGCHLD, "CLD": syscall.SIGCHLD, "CONT": syscall.SIGCONT,
	"STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU,
	"URG": syscall.SIGURG, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ, "VTALRM": syscall.SIGVTALRM,
	"PROF": syscall.SIGPROF, "WINCH": syscall.SIGWINCH, "IO": syscall.SIGIO, "SYS": syscall.SIGSYS,
}

// canonical holds the preferred name of each numbered signal.
var canonical = map[syscall.Signal]string{}

func init() {
	for n, s := range linuxNames {
		names[n] = s
	}
	for n, s := range names {
		if n == "IOT" || n == "CLD" || n == "POLL" {
			continue
		}
		canonical[s] = "SIG" + n
	}
}

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
	if sig, ok := names[t]; ok {
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
	if n, ok := canonical[sig]; ok {
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
