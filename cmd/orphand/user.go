package main

import (
	"log/slog"
	"os"

	"github.com/orphand/orphand/agent/config"
)

// userMode reports whether serve runs a per-user agent: asked for with
// --user, or run by any user but root (a system agent needs root).
func userMode(asked bool) bool { return asked || os.Geteuid() != 0 }

// loadConfig reads the configuration file over the defaults of the agent's
// mode. A per-user agent reads its own file, never the system agent's:
// the paths there are root's.
func loadConfig(path string, explicit, user bool) (config.File, error) {
	if !user {
		return config.Load(path, explicit)
	}
	def, err := config.UserDefault()
	if err != nil {
		return def, err
	}
	if !explicit {
		if path, err = config.UserPath(); err != nil {
			return def, err
		}
	}
	return config.LoadOver(path, explicit, def)
}

// logUserAgent says at start what a per-user agent is and where it keeps
// its things.
func logUserAgent(log *slog.Logger, f config.File) {
	log.Info("per-user agent: it serves its own user only", "uid", os.Geteuid(),
		"socket", f.Socket, "state_dir", f.StateDir)
}
