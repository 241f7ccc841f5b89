package main

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// A per-user agent's own listener: directory 0700 (tightened if it was
// not), socket 0600.
func TestListenPrivate(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := filepath.Join(t.TempDir(), "orphand")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "orphand.sock")
	lns, err := listen(path, "", true, log)
	if err != nil {
		t.Fatal(err)
	}
	defer lns.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory %v, %v: want mode 0700", fi.Mode(), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket %v, %v: want a socket of mode 0600", fi.Mode(), err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// A socket directory that belongs to someone else is refused, not used.
func TestListenPrivateRefusesAnotherUsersDir(t *testing.T) {
	testutil.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "orphand")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := listen(filepath.Join(dir, "orphand.sock"), "", true, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("listen in uid 65534's directory: %v, want a refusal naming the owner", err)
	}
}

// orphand serve --user takes its paths from the XDG variables and reads
// its own configuration file, never the system agent's.
func TestServeUserPaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "cfg"))
	opts, code, ok := parseServe([]string{"--user"}, io.Discard, io.Discard)
	if !ok {
		t.Fatalf("parseServe --user: exit %d", code)
	}
	f := opts.file
	if !opts.user || f.Socket != "/run/user/4242/"+ipc.UserSocketName || f.StateDir != filepath.Join(home, ".local/state/orphand") {
		t.Errorf("--user: user %v, socket %q, state %q", opts.user, f.Socket, f.StateDir)
	}
	// The user's configuration file is read; the flags still win.
	cfgDir := filepath.Join(home, "cfg", "orphand")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "orphand.toml"), []byte("backend = \"proc\"\nlog_level = \"warn\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, code, ok = parseServe([]string{"--user", "--log-level", "debug"}, io.Discard, io.Discard)
	if !ok || opts.file.Backend != "proc" || opts.file.LogLevel != "debug" {
		t.Errorf("--user with ~/.config/orphand/orphand.toml: ok %v (exit %d), backend %q, log level %q", ok, code, opts.file.Backend, opts.file.LogLevel)
	}
}

// As root without --user, serve is the system agent with its paths.
func TestServeSystemByDefaultForRoot(t *testing.T) {
	testutil.RequireRoot(t)
	opts, code, ok := parseServe([]string{"--config", emptyConfig(t)}, io.Discard, io.Discard)
	if !ok || opts.user || opts.file.Socket != ipc.DefaultSocket {
		t.Errorf("serve as root: ok %v (exit %d), user %v, socket %q", ok, code, opts.user, opts.file.Socket)
	}
}
