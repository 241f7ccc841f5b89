package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// listen returns the socket systemd passed (socket activation), or else
// the agent's own listener on path: world-connectable for the system
// agent, private to its user for a per-user agent.
func listen(path string, user bool, log *slog.Logger) (net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var passed []net.Listener
	for _, l := range lns {
		if l != nil {
			passed = append(passed, l)
		}
	}
	if len(passed) > 0 {
		for _, extra := range passed[1:] {
			log.Warn("ignoring an extra socket passed by systemd", "addr", extra.Addr().String())
			extra.Close()
		}
		if _, ok := passed[0].(*net.UnixListener); !ok {
			passed[0].Close()
			return nil, fmt.Errorf("systemd passed a %s socket; orphand serves a Unix stream socket (ListenStream=/run/orphand/orphand.sock)", passed[0].Addr().Network())
		}
		log.Info("serving the socket passed by systemd", "addr", passed[0].Addr().String(), "ignored_socket_flag", path)
		return passed[0], nil
	}
	if user {
		return listenPrivate(path, log)
	}
	return listenOwn(path, log)
}

// listenOwn listens on path: its directory is created; the socket is made
// world-connectable (authorisation is by peer credentials). A lock file
// beside it (path.lock, held while the agent lives) tells a live agent from
// a stale socket file: with the lock held, any socket file left at path is
// a dead agent's and is replaced.
func listenOwn(path string, log *slog.Logger) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create the socket's directory: %w", err)
	}
	return listenAt(path, 0o666, log)
}

// listenAt listens on path with the socket's mode, as listenOwn says, once
// its directory exists.
func listenAt(path string, mode os.FileMode, log *slog.Logger) (net.Listener, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the socket's lock file: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another orphand is already serving %s (stop it, or choose another --socket)", path)
		}
		return nil, fmt.Errorf("lock %s.lock: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			lock.Close()
			return nil, fmt.Errorf("%s exists and is not a socket: remove it, or choose another --socket", path)
		}
		log.Info("replacing a stale socket left by an agent that is gone", "socket", path)
		if err := os.Remove(path); err != nil {
			lock.Close()
			return nil, fmt.Errorf("remove the stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		lock.Close()
		return nil, fmt.Errorf("set the mode of %s to %#o: %w", path, mode, err)
	}
	log.Info("listening", "socket", path)
	return &lockedListener{Listener: ln, lock: lock}, nil
}

// lockedListener releases the lock file when the listener is closed (the
// socket file is unlinked by the listener itself).
type lockedListener struct {
	net.Listener
	lock *os.File
}

func (l *lockedListener) Close() error {
	err := l.Listener.Close()
	l.lock.Close()
	return err
}
