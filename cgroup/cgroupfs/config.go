package cgroupfs

import (
	"log/slog"

	"github.com/orphand/orphand/cgroup"
)

// Config configures [Open].
type Config struct {
	// Root is the cgroup groups are created under: a path relative to the
	// cgroup2 mount ("/orphand") or an absolute path below the mount point
	// ("/sys/fs/cgroup/orphand"). It is created if missing. Empty: see the
	// package doc.
	Root string
	// User is set for a per-user agent: the shared default root
	// (/orphand at the top of the mount, root's) is never used, only Root
	// or the agent's own delegated cgroup — a cgroup whose cgroup.procs
	// and subtree the user may write, marked delegated as systemd marks
	// it (see the package doc).
	User bool
	// NoCgroupKill forces the kill pipeline's freeze + SIGKILL fallback.
	NoCgroupKill bool
	// NoOpenat2 forces path resolution without openat2(2).
	NoOpenat2 bool
	// Mount overrides discovery of the cgroup2 mount (zero: discover).
	Mount cgroup.Mount
	// Logger receives the backend's rare messages; nil discards them.
	Logger *slog.Logger
}
