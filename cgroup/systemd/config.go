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
	// User connects to the user's own service manager (systemd --user, in
	// user@UID.service) instead of the system's: the backend of a per-user
	// agent. Scopes are then that manager's units, in the subtree it
	// delegates to the user (internal/sdmanager finds the manager).
	User bool
	// Logger receives the backend's rare messages; nil discards them.
	Logger *slog.Logger
}
