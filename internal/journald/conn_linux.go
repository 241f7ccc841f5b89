package journald

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
)

// SocketPath is journald's native socket.
const SocketPath = "/run/systemd/journal/socket"

// sendBuffer is the send buffer asked for, as sd-journal asks: entries up
// to about this size go as one datagram (the kernel caps the request at
// twice net.core.wmem_max unless the caller may force it), larger ones
// through a memfd.
const sendBuffer = 8 << 20

// sendTimeout bounds one entry: journald reads its socket at once, but a
// wedged journald must not wedge the logger for long. An entry that times
// out is written to the fallback instead.
const sendTimeout = 5 * time.Second

// Conn sends entries to a journald socket. It is safe for concurrent use:
// each entry is one sendmsg.
type Conn struct {
	fd   int
	path string
}

// Dial returns a Conn for the journald socket at path (SocketPath for the
// system's journal). The socket is not connected: each entry is addressed,
// so a journald restarted meanwhile still gets the next one.
func Dial(path string) (*Conn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("journald: %w", os.NewSyscallError("socket", err))
	}
	// Best effort, as sd-journal does: a smaller buffer only sends more
	// entries through a memfd.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sendBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sendBuffer)
	}
	tv := unix.NsecToTimeval(sendTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("journald: %w", os.NewSyscallError("setsockopt SO_SNDTIMEO", err))
	}
	return &Conn{fd: fd, path: path}, nil
}

// Send sends one entry (fields as AppendField writes them): as a datagram,
// or, if it is too large for one, through a sealed memfd.
func (c *Conn) Send(entry []byte) error {
	// A fresh address per call: Sendmsg writes into the sockaddr it is
	// given, so a shared one would race between callers.
	err := sendmsg(c.fd, entry, nil, &unix.SockaddrUnix{Name: c.path})
	if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) {
		err = c.sendMemfd(entry)
	}
	if err != nil {
		return fmt.Errorf("journald: send to %s: %w", c.path, err)
	}
	return nil
}

// sendMemfd writes entry to a memfd, seals it so that journald can map it
// knowing it will not change, and sends the descriptor alone.
func (c *Conn) sendMemfd(entry []byte) error {
	fd, err := unix.MemfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return os.NewSyscallError("memfd_create", err)
	}
	defer unix.Close(fd)
	for rest := entry; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("write memfd", err)
		}
		rest = rest[n:]
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return os.NewSyscallError("fcntl F_ADD_SEALS", err)
	}
	return sendmsg(c.fd, nil, unix.UnixRights(fd), &unix.SockaddrUnix{Name: c.path})
}

func sendmsg(fd int, p, oob []byte, to *unix.SockaddrUnix) error {
	for {
		err := unix.Sendmsg(fd, p, oob, to, unix.MSG_NOSIGNAL)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("sendmsg", err)
		}
		return nil
	}
}

// Close closes the Conn's socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

// StderrIsJournal reports whether the process's standard error is
// connected to the journal: systemd sets $JOURNAL_STREAM to the device and
// inode ("dev:ino") of the stream it connects a service's stdout or stderr
// to, and the variable is inherited by children whose stderr may be
// something else entirely, so it counts only if it names fd 2 (go-systemd's
// check, which compares the two). A malformed variable counts as no.
func StderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return ok && err == nil
}
