package peercred

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPidfdSupported: the probe says what a real connection shows, and when
// the kernel has SO_PEERPIDFD the pidfd it gives is the connecting
// process's (here, the test's own).
func TestPidfdSupported(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	rc, err := server.(*net.UnixConn).SyscallConn()
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
