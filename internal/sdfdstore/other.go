//go:build !linux

package sdfdstore

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("sdfdstore: the systemd fd store exists only on Linux")

// Notifier is the notify-socket client; it exists only on Linux.
type Notifier struct{}

// Open fails: systemd runs only on Linux.
func Open() (*Notifier, error) { return nil, errUnsupported }

// Dial fails: systemd runs only on Linux.
func Dial(string) (*Notifier, error) { return nil, errUnsupported }

// Path returns "".
func (n *Notifier) Path() string { return "" }

// Notify fails.
func (n *Notifier) Notify(string, ...int) error { return errUnsupported }

// Store fails.
func (n *Notifier) Store(string, ...int) error { return errUnsupported }

// Remove fails.
func (n *Notifier) Remove(string) error { return errUnsupported }

// Close does nothing.
func (n *Notifier) Close() error { return nil }

// Take finds nothing.
func Take(func(string) bool) ([]*os.File, error) { return nil, nil }
