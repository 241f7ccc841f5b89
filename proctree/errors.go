package proctree

import "errors"

var (
	// ErrUnsupported is returned on systems other than Linux.
	ErrUnsupported = errors.New("proctree: not supported on this system")
	// ErrIdentityMismatch means a pid now names a different process than the
	// one recorded (the pid was reused).
	ErrIdentityMismatch = errors.New("pid was reused by another process")
	// ErrAlreadyReaper is returned by [AcquireReaper] when the process is
	// already a child subreaper (procctl's EALREADY).
	ErrAlreadyReaper = errors.New("already a child subreaper")
	// ErrNotReaper is returned by [ReleaseReaper] when the process is not a
	// child subreaper (procctl's ENOTCONN), and wrapped by [KillDescendants]
	// when the caller is neither a subreaper nor PID 1.
	ErrNotReaper = errors.New("not a child subreaper")
	// ErrWatcherClosed is returned by [Watcher.Add] after [Watcher.Close].
	ErrWatcherClosed = errors.New("proctree: watcher closed")
)
