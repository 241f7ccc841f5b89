//go:build !linux

package proctree

import (
	"context"
	"syscall"
)

// Process is a process held by a pidfd (Linux only).
type Process struct{ id Identity }

// Open is not supported on this system.
func Open(int) (*Process, error) { return nil, ErrUnsupported }

// OpenIdentity is not supported on this system.
func OpenIdentity(Identity) (*Process, error) { return nil, ErrUnsupported }

// FromPidfd is not supported on this system.
func FromPidfd(int) (*Process, error) { return nil, ErrUnsupported }

// ReadStat is not supported on this system.
func ReadStat(int) (Stat, error) { return Stat{}, ErrUnsupported }

// ReadStatus is not supported on this system.
func ReadStatus(int) (Status, error) { return Status{}, ErrUnsupported }

// PidNamespace is not supported on this system.
func PidNamespace(int) (string, error) { return "", ErrUnsupported }

// BootID returns "" on this system.
func BootID() string { return "" }

// BootTicks returns 0 on this system.
func BootTicks() uint64 { return 0 }

func (p *Process) Pid() int                           { return p.id.Pid }
func (p *Process) Identity() Identity                 { return p.id }
func (p *Process) Signal(syscall.Signal) error        { return ErrUnsupported }
func (p *Process) Exited() bool                       { return false }
func (p *Process) Wait(context.Context) error         { return ErrUnsupported }
func (p *Process) Done() <-chan struct{}              { return nil }
func (p *Process) Close() error                       { return nil }
func (p *Process) WithPidfd(func(fd int) error) error { return ErrUnsupported }
func (p *Process) Dup() (*Process, error)             { return nil, ErrUnsupported }

// ReadCmdline is not supported on this system.
func ReadCmdline(int, int) (string, error) { return "", ErrUnsupported }

// ReadWchan is not supported on this system.
func ReadWchan(int) (string, error) { return "", ErrUnsupported }
