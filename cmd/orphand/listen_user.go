package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// listenPrivate is a per-user agent's own listener: the socket's directory
// is the user's and mode 0700, the socket 0600, so that no other user can
// reach it. The agent checks every caller's uid anyway (a process with
// CAP_DAC_OVERRIDE ignores the modes).
func listenPrivate(path string, log *slog.Logger) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the socket's directory: %w%s", err, runtimeDirHint())
	}
	if err := ownPrivateDir(dir, log); err != nil {
		return nil, err
	}
	return listenAt(path, 0o600, log)
}

// ownPrivateDir checks that dir is a directory of the agent's user and
// makes it mode 0700 if it is not already.
func ownPrivateDir(dir string, log *slog.Logger) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("the socket's directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory: remove it, or choose another --socket", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		owner := "another user"
		if ok {
			owner = fmt.Sprintf("uid %d", st.Uid)
		}
		return fmt.Errorf("the socket's directory %s belongs to %s, not to this per-user agent's user (uid %d): choose another --socket",
			dir, owner, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("make the socket's directory private (mode 0700): %w", err)
		}
		log.Info("made the socket's directory private to its user", "dir", dir, "was", fi.Mode().Perm().String())
	}
	return nil
}

// runtimeDirHint explains a socket directory that cannot be made when the
// runtime directory is not set (a session without pam_systemd).
func runtimeDirHint() string {
	if os.Getenv("XDG_RUNTIME_DIR") != "" {
		return ""
	}
	return " ($XDG_RUNTIME_DIR is not set, so the socket went under /run/user/<uid>: log in through PAM with pam_systemd, set XDG_RUNTIME_DIR, or choose --socket)"
}
