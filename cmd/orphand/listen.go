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

// compatFDName is the FileDescriptorName= of orphand-compat.socket: the
// descriptor systemd passes under that name is the compatibility socket,
// any other the agent's own.
const compatFDName = "compat"

// listeners are the sockets the agent serves.
type listeners struct {
	main   net.Listener
	compat net.Listener // nil: no compatibility socket
}

func (l listeners) Close() {
	if l.main != nil {
		l.main.Close()
	}
	if l.compat != nil {
		l.compat.Close()
	}
}

// listen returns the sockets systemd passed (socket activation) — the
// agent's, and the compatibility socket, named compatFDName — or else the
// agent's own listeners on path and, when compatPath is set, on compatPath:
// world-connectable for the system agent, private to its user for a
// per-user agent.
func listen(path, compatPath string, user bool, log *slog.Logger) (listeners, error) {
	own := listenOwn
	if user {
		own = listenPrivate
	}
	var passed, passedCompat []net.Listener
	for _, f := range activation.Files(true) {
		l, err := net.FileListener(f)
		name := f.Name()
		f.Close()
		if err != nil {
			log.Warn("ignoring a descriptor passed by systemd that is not a listening socket", "name", name, "err", err)
			continue
		}
		if name == compatFDName {
			passedCompat = append(passedCompat, l)
		} else {
			passed = append(passed, l)
		}
	}
	var ls listeners
	var err error
	if ls.main, err = pick(passed, path, own, "the socket", "ListenStream=/run/orphand/orphand.sock", log); err != nil {
		closeAll(passedCompat)
		return ls, err
	}
	if len(passedCompat) == 0 && compatPath == "" {
		return ls, nil
	}
	if ls.compat, err = pick(passedCompat, compatPath, own, "the compatibility socket", "FileDescriptorName=compat", log); err != nil {
		ls.Close()
		return listeners{}, err
	}
	if len(passedCompat) == 0 {
		warnSharedDir(compatPath, log)
	}
	return ls, nil
}

// pick returns the first of the sockets systemd passed for one role
// (closing the rest), or else listens on path itself with own.
func pick(passed []net.Listener, path string, own func(string, *slog.Logger) (net.Listener, error), role, unitHint string, log *slog.Logger) (net.Listener, error) {
	if len(passed) == 0 {
		return own(path, log)
	}
	for _, extra := range passed[1:] {
		log.Warn("ignoring an extra socket passed by systemd for "+role, "addr", extra.Addr().String())
		extra.Close()
	}
	if _, ok := passed[0].(*net.UnixListener); !ok {
		passed[0].Close()
		return nil, fmt.Errorf("systemd passed a %s socket as %s; orphand serves a Unix stream socket (%s)", passed[0].Addr().Network(), role, unitHint)
	}
	log.Info("serving "+role+" passed by systemd", "addr", passed[0].Addr().String(), "ignored_path", path)
	return passed[0], nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// warnSharedDir warns when the compatibility socket lives in a directory
// every user may write to (/tmp, where the original daemon put it): while
// the agent is not listening, any user can put a socket of their own there
// and receive everyone's records (docs/compat.md).
func warnSharedDir(path string, log *slog.Logger) {
	fi, err := os.Stat(filepath.Dir(path))
	if err == nil && fi.Mode().Perm()&0o002 != 0 {
		log.Warn("the compatibility socket is in a directory every user may write to: when the agent is not listening, another user can take the path and receive (and drop) every client's records; prefer /run/orphand/compat.sock (docs/compat.md)",
			"socket", path)
	}
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
