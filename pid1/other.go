//go:build !linux

package pid1

import (
	"context"
	"errors"

	"github.com/orphand/orphand/proctree"
)

// ErrUnsupported is returned on systems other than Linux.
var ErrUnsupported = errors.New("pid1: only supported on Linux")

// Run is not supported on this system.
func Run(context.Context, Config) (Result, error) {
	return Result{Code: ExitInitFailed}, &Error{Code: ExitInitFailed, Err: ErrUnsupported}
}

// Init is a Go program's init duty (Linux only).
type Init struct{}

// Start is not supported on this system.
func Start(context.Context, Options) (*Init, error) { return nil, ErrUnsupported }

// Context returns a context that is never done on this system.
func (in *Init) Context() context.Context { return context.Background() }

// Reaper returns nil on this system.
func (in *Init) Reaper() *proctree.Reaper { return nil }

// Shutdown does nothing on this system.
func (in *Init) Shutdown(context.Context) error { return nil }
