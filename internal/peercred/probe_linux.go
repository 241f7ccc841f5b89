package peercred

import (
	"sync"

	"golang.org/x/sys/unix"
)

// PidfdSupported reports whether getsockopt(SO_PEERPIDFD) works, asking it
// on a socket pair the first time and remembering the answer.
var PidfdSupported = sync.OnceValue(func() bool {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	pfd, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		return false
	}
	unix.Close(pfd)
	return true
})
