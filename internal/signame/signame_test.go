package signame

import (
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"TERM": syscall.SIGTERM, "sigkill": syscall.SIGKILL, "SIGHUP": syscall.SIGHUP, "9": syscall.SIGKILL,
		" int ": syscall.SIGINT, "SIGRTMIN": 34, "RTMIN+3": 37, "SIGRTMAX-1": 63, "SIGRTMAX": 64, "cld": syscall.SIGCHLD, "iot": syscall.SIGABRT,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "-1", "FOO", "SIGRTMIN-1", "RTMAX+1", "RTMIN+x", "RTMIN+40"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
		}
	}
}

func TestNameRoundTrip(t *testing.T) {
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		if sig == 32 || sig == 33 {
			continue // reserved by glibc, no name
		}
		got, err := Parse(Name(sig))
		if err != nil || got != sig {
			t.Errorf("Parse(Name(%d)=%q) = %v, %v", int(sig), Name(sig), got, err)
		}
	}
	if Name(syscall.SIGTERM) != "SIGTERM" || Name(36) != "SIGRTMIN+2" {
		t.Errorf("Name: %q %q", Name(syscall.SIGTERM), Name(36))
	}
}
