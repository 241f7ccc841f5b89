//go:build !linux

package proctree

import (
	"context"
	"syscall"
)

// Descendants is not supported on this system.
func Descendants(int) ([]int, error) { return nil, ErrUnsupported }

// Children is not supported on this system.
func Children(int) ([]int, error) { return nil, ErrUnsupported }

// AcquireReaper is not supported on this system.
func AcquireReaper() error { return ErrUnsupported }

// ReleaseReaper is not supported on this system.
func ReleaseReaper() error { return ErrUnsupported }

// ReaperStatus is not supported on this system.
func ReaperStatus() (ReaperState, error) { return ReaperState{}, ErrUnsupported }

// SetParentDeathSignal is not supported on this system.
func SetParentDeathSignal(syscall.Signal) error { return ErrUnsupported }

// ParentDeathSignal is not supported on this system.
func ParentDeathSignal() (syscall.Signal, error) { return 0, ErrUnsupported }

// ParentAtStart returns -1 on this system.
func ParentAtStart() int { return -1 }

// KillDescendants is not supported on this system.
func KillDescendants(context.Context, syscall.Signal) (int, error) { return 0, ErrUnsupported }

// Watcher waits for process exits (Linux only).
type Watcher struct{}

// NewWatcher is not supported on this system.
func NewWatcher() (*Watcher, error) { return nil, ErrUnsupported }

// Add is not supported on this system.
func (w *Watcher) Add(*Process, func()) (func(), error) { return nil, ErrUnsupported }

// Len returns 0 on this system.
func (w *Watcher) Len() int { return 0 }

// Close does nothing on this system.
func (w *Watcher) Close() error { return nil }

// Reaper reaps orphaned children (Linux only).
type Reaper struct{}

// Reap is not supported on this system.
//
// Deprecated: use StartReaper.
func Reap() error { return ErrUnsupported }

// StartReaper is not supported on this system.
func StartReaper(context.Context, ReaperConfig) (*Reaper, error) { return nil, ErrUnsupported }

// Wait returns at once on this system.
func (r *Reaper) Wait() {}

// Done returns a closed channel on this system.
func (r *Reaper) Done() <-chan struct{} { c := make(chan struct{}); close(c); return c }

// Dropped returns 0 on this system.
func (r *Reaper) Dropped() uint64 { return 0 }

// Reaped returns 0 on this system.
func (r *Reaper) Reaped() uint64 { return 0 }

// Claim marks a child as owned (Linux only).
type Claim struct{ pid int }

// ClaimChild is not supported on this system.
func ClaimChild(func() (int, error)) (*Claim, error) { return nil, ErrUnsupported }

// Pid returns the claimed pid.
func (c *Claim) Pid() int { return c.pid }

// Release does nothing on this system.
func (c *Claim) Release() {}
