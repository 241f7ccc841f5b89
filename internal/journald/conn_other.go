//go:build !linux

package journald

import "errors"

// SocketPath is journald's native socket.
const SocketPath = "/run/systemd/journal/socket"

var errNotLinux = errors.New("journald: the journal exists on Linux only")

// Conn sends entries to a journald socket (Linux only).
type Conn struct{}

// Dial fails: there is no journal here.
func Dial(string) (*Conn, error) { return nil, errNotLinux }

// Send fails: there is no journal here.
func (c *Conn) Send([]byte) error { return errNotLinux }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// StderrIsJournal is false: there is no journal here.
func StderrIsJournal() bool { return false }
