package systemd

import (
	"log/slog"

	"github.com/orphand/orphand/cgroup"
)

// Config configures [Open].
type Config struct {
	// NoCgroupKill forces the kill pipeline's freeze + SIGKILL fallback.
	NoCgroupKill bool
	// Mount overrides discovery of the cgroup2 mount (zero: discover). It
	// must be the hierarchy systemd manages.
	Mount cgroup.Mount
	// Logger receives the backend's rare messages; nil discards them.
	Logger *slog.Logger
}
