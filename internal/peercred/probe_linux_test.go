package peercred

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/testutil"
)

// TestPidfdSupported: the probe says what a real connection shows, and when
// the kernel has SO_PEERPIDFD the pidfd it gives is the connecting
// process's (here, the test's own).
func TestPidfdSupported(t *testing.T) {
	server, _ := testutil.UnixConnPair(t)
	rc, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	pfd, optErr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		pfd, optErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}); err != nil {
		t.Fatal(err)
	}
	if optErr != nil {
		if !errors.Is(optErr, unix.ENOPROTOOPT) {
			t.Fatalf("getsockopt(SO_PEERPIDFD) on a connection: %v", optErr)
		}
		if PidfdSupported() {
			t.Fatalf("PidfdSupported() = true, but a connection gives %v", optErr)
		}
		return
	}
	defer unix.Close(pfd)
	if !PidfdSupported() {
		t.Fatal("PidfdSupported() = false, but a connection gives a pidfd")
	}
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(pfd))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Pid:\t" + strconv.Itoa(os.Getpid()) + "\n"; !strings.Contains(string(info), want) {
		t.Errorf("the peer pidfd's fdinfo lacks %q:\n%s", want, info)
	}
}
