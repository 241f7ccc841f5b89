package sdfdstore

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxFDsPerMessage is the kernel's SCM_MAX_FD: the most descriptors one
// sendmsg may carry.
const maxFDsPerMessage = 253

// sendTimeout bounds one message: systemd drains its notify socket at
// once, but a wedged manager must not wedge the caller.
const sendTimeout = 5 * time.Second

// Notifier sends notify messages, with or without descriptors, to the
// socket named by $NOTIFY_SOCKET. It is safe for concurrent use: each
// message is one datagram, and datagrams from one socket arrive in order.
type Notifier struct {
	fd   int
	path string
}

// Open returns a Notifier for $NOTIFY_SOCKET, or an error wrapping
// [ErrNoSocket] when the variable is unset (the process was not started
// by systemd with a notify socket).
func Open() (*Notifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, fmt.Errorf("sdfdstore: $NOTIFY_SOCKET is not set: %w", ErrNoSocket)
	}
	return Dial(path)
}

// Dial returns a Notifier for the notify socket at path: a file system
// path, or "@name" for an abstract socket.
func Dial(path string) (*Notifier, error) {
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return nil, fmt.Errorf("sdfdstore: notify socket %q: only Unix sockets (a path or @abstract) are supported", path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sdfdstore: %w", os.NewSyscallError("socket", err))
	}
	tv := unix.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sdfdstore: %w", os.NewSyscallError("setsockopt SO_SNDTIMEO", err))
	}
	return &Notifier{fd: fd, path: path}, nil
}

// Path is the notify socket's address, as $NOTIFY_SOCKET gave it.
func (n *Notifier) Path() string { return n.path }

// Notify sends state (newline-separated VAR=value assignments) with fds
// attached, in one datagram.
func (n *Notifier) Notify(state string, fds ...int) error {
	if len(fds) > maxFDsPerMessage {
		return fmt.Errorf("sdfdstore: %d descriptors in one message; the kernel allows %d", len(fds), maxFDsPerMessage)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// A fresh address per message: Sendmsg writes into the sockaddr it is
	// given, so one shared by concurrent callers would race. x/sys/unix
	// turns a leading '@' into the abstract namespace's NUL.
	addr := &unix.SockaddrUnix{Name: n.path}
	for {
		err := unix.Sendmsg(n.fd, []byte(state), oob, addr, unix.MSG_NOSIGNAL)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return fmt.Errorf("sdfdstore: notify %s: systemd did not read its socket within %v: %w", n.path, sendTimeout, err)
		case err != nil:
			return fmt.Errorf("sdfdstore: notify %s: %w", n.path, os.NewSyscallError("sendmsg", err))
		}
		return nil
	}
}

// Store hands fds to systemd's file descriptor store under name (systemd
// duplicates them: the caller keeps its own). FDPOLL=0 keeps systemd from
// dropping a descriptor when it polls as hung up or readable: a pidfd polls
// readable once its process exits, and the caller, not systemd, decides
// when an entry is done. The unit needs FileDescriptorStoreMax= > 0, or
// systemd closes what it receives (and logs why).
func (n *Notifier) Store(name string, fds ...int) error {
	if err := ValidName(name); err != nil {
		return err
	}
	for len(fds) > 0 {
		k := min(len(fds), maxFDsPerMessage)
		if err := n.Notify("FDSTORE=1\nFDNAME="+name+"\nFDPOLL=0", fds[:k]...); err != nil {
			return err
		}
		fds = fds[k:]
	}
	return nil
}

// Remove drops every descriptor stored under name from the store.
func (n *Notifier) Remove(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return n.Notify("FDSTOREREMOVE=1\nFDNAME=" + name)
}

// Close closes the Notifier's socket.
func (n *Notifier) Close() error { return unix.Close(n.fd) }
