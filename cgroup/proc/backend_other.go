//go:build !linux

package proc

import (
	"context"
	"fmt"

	"github.com/orphand/orphand/cgroup"
)

// Backend is the proc backend; it exists only on Linux.
type Backend struct{ cgroup.Backend }

// Open fails: pidfds and /proc are Linux's.
func Open(context.Context, Config) (*Backend, error) {
	return nil, fmt.Errorf("%w: proc: the proc backend needs Linux (pidfds and /proc)", cgroup.ErrUnavailable)
}

// Tracking returns "" on this system.
func (b *Backend) Tracking() string { return "" }

// Limitations returns nil on this system.
func (b *Backend) Limitations() []string { return nil }

// GroupOf finds nothing on this system.
func (b *Backend) GroupOf(int) (string, bool) { return "", false }

// PlaceOf finds nothing on this system.
func (b *Backend) PlaceOf(int) string { return "" }

// Follow does nothing on this system.
func (b *Backend) Follow(context.Context, int) {}
