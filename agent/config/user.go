package config

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/orphand/orphand/ipc"
)

// A per-user agent (orphand serve --user, the default for any user but
// root) keeps everything in the user's own directories, as the XDG Base
// Directory Specification lays them out, and never reads the system
// agent's file:
//
//	socket    $XDG_RUNTIME_DIR/orphand/orphand.sock  (ipc.UserSocket)
//	state     $XDG_STATE_HOME/orphand                (~/.local/state/orphand)
//	config    $XDG_CONFIG_HOME/orphand/orphand.toml  (~/.config/orphand/orphand.toml)

// UserDefault returns the configuration a per-user agent runs with when it
// has no file: the system agent's defaults, with the socket in the user's
// runtime directory, the state under $XDG_STATE_HOME, and no connections
// kept for root (a per-user agent serves nobody but its user).
func UserDefault() (File, error) {
	f := Default()
	state, err := xdgDir("XDG_STATE_HOME", ".local/state")
	if err != nil {
		return f, err
	}
	f.Socket = ipc.UserSocket()
	f.StateDir = filepath.Join(state, "orphand")
	f.Limits.ConnectionsRootReserve = 0
	return f, nil
}

// UserPath is where a per-user agent looks for its configuration file:
// $XDG_CONFIG_HOME/orphand/orphand.toml, by default
// ~/.config/orphand/orphand.toml.
func UserPath() (string, error) {
	dir, err := xdgDir("XDG_CONFIG_HOME", ".config")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "orphand", "orphand.toml"), nil
}

// xdgDir is the base directory the variable names when it holds an
// absolute path (the specification says to ignore a relative one), else
// home/fallback.
func xdgDir(variable, fallback string) (string, error) {
	if d := os.Getenv(variable); filepath.IsAbs(d) {
		return filepath.Clean(d), nil
	}
	home, err := homeDir()
	if err != nil {
		return "", fmt.Errorf("$%s is not set and %w: set it, or name the directory with a flag", variable, err)
	}
	return filepath.Join(home, fallback), nil
}

// homeDir is $HOME, else the home directory in the user database.
func homeDir() (string, error) {
	if h := os.Getenv("HOME"); filepath.IsAbs(h) {
		return h, nil
	}
	u, err := user.Current()
	if err == nil && filepath.IsAbs(u.HomeDir) {
		return u.HomeDir, nil
	}
	if err == nil {
		err = errors.New("it has no home directory")
	}
	return "", fmt.Errorf("the home directory is unknown ($HOME is not set; the user database: %w)", err)
}
