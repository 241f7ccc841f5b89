package signame

import (
	"syscall"
	"testing"
)

// The signals only Linux has, and its alias POLL.
func TestParseLinux(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGPOLL": syscall.SIGIO, "poll": syscall.SIGIO, "STKFLT": syscall.SIGSTKFLT, "sigpwr": syscall.SIGPWR,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if Name(syscall.SIGIO) != "SIGIO" {
		t.Errorf("Name(SIGIO) = %q, want SIGIO (POLL is only an alias)", Name(syscall.SIGIO))
	}
}
