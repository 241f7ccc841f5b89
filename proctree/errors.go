package proctree

import "errors"

var (
	// ErrUnsupported is returned on systems other than Linux.
	ErrUnsupported = errors.New("proctree: not supported on this system")
	// ErrIdentityMismatch means a pid now names a different process than the
	// one recorded (the pid was reused).
	ErrIdentityMismatch = errors.New("pid was reused by another process")
)
