package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// listenMetrics opens the metrics listener: a Unix socket for an absolute
// path (a stale socket file there is replaced; the socket is readable by
// root and the file's group), else TCP on HOST:PORT.
func listenMetrics(addr string) (net.Listener, error) {
	if !filepath.IsAbs(addr) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen for metrics on %s: %w (choose another metrics_address, or free the port)", addr, err)
		}
		return ln, nil
	}
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("metrics socket %s exists and is not a socket: remove it, or choose another metrics_address", addr)
		}
		if err := os.Remove(addr); err != nil {
			return nil, fmt.Errorf("remove the stale metrics socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("metrics socket %s: %w", addr, err)
	}
	if err := os.MkdirAll(filepath.Dir(addr), 0o755); err != nil {
		return nil, fmt.Errorf("create the metrics socket's directory: %w", err)
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	if err := os.Chmod(addr, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set the metrics socket's mode: %w", err)
	}
	return ln, nil
}
