package pid1

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The real-time signals as programs linked with glibc number them: glibc
// keeps 32 and 33 for itself, so its SIGRTMIN is 34.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// aliases are the second names some signals have.
var aliases = map[string]string{"IOT": "ABRT", "CLD": "CHLD", "POLL": "IO"}

// ParseSignal returns the signal a user named: a name with or without the
// SIG prefix in any case ("TERM", "SIGterm"), RTMIN+n or RTMAX-n, or a
// number 1..64.
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("signal %d out of range 1..%d", n, sigRTMax)
		}
		return syscall.Signal(n), nil
	}
	t = strings.TrimPrefix(t, "SIG")
	if a, ok := aliases[t]; ok {
		t = a
	}
	if n := unix.SignalNum("SIG" + t); n != 0 {
		return n, nil
	}
	if n, ok := parseRealtime(t); ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown signal %q (use a name like TERM or SIGKILL, RTMIN+3, or a number 1..%d)", s, sigRTMax)
}

// parseRealtime parses RTMIN, RTMIN+n, RTMAX and RTMAX-n (upper case, no
// SIG prefix).
func parseRealtime(t string) (syscall.Signal, bool) {
	base, sign := sigRTMin, 1
	rest, ok := strings.CutPrefix(t, "RTMIN")
	if !ok {
		base, sign = sigRTMax, -1
		if rest, ok = strings.CutPrefix(t, "RTMAX"); !ok {
			return 0, false
		}
	}
	off := 0
	if rest != "" {
		n, err := strconv.Atoi(rest[1:])
		if err != nil || n < 0 || (rest[0] == '+') != (sign > 0) || (rest[0] != '+' && rest[0] != '-') {
			return 0, false
		}
		off = n * sign
	}
	v := base + off
	return syscall.Signal(v), v >= sigRTMin && v <= sigRTMax
}

// SignalName returns the conventional name of sig, such as "SIGTERM" or
// "SIGRTMIN+2"; a number without a name is returned in decimal.
func SignalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	switch n := int(sig); {
	case n == sigRTMin:
		return "SIGRTMIN"
	case n > sigRTMin && n < sigRTMax:
		return "SIGRTMIN+" + strconv.Itoa(n-sigRTMin)
	case n == sigRTMax:
		return "SIGRTMAX"
	}
	return strconv.Itoa(int(sig))
}
