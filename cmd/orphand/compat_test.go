package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/agent/compat"
	"github.com/orphand/orphand/internal/testutil"
)

// listenerFile makes a listening Unix socket at path and returns it as a
// file to pass to a child, as systemd would.
func listenerFile(t *testing.T, path string) *os.File {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	t.Cleanup(func() { f.Close() })
	return f
}

// startServe runs `orphand serve args…` as a child (the test binary as
// orphand), with files passed as systemd passes sockets, named names. It
// returns the agent's log; the cleanup stops it with SIGTERM.
func startServe(t *testing.T, files []*os.File, names []string, args ...string) *testutil.SyncBuffer {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, self, "serve"}, args...)...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	if len(files) > 0 {
		cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
		cmd.ExtraFiles = files
	}
	var log testutil.SyncBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("agent exit: %v\n%s", err, log.String())
		}
	})
	return &log
}

// pingUntilServed PINGs the compatibility socket at path until the agent
// answers (it listens once ready).
func pingUntilServed(t *testing.T, path string, log *testutil.SyncBuffer) {
	t.Helper()
	ping := compat.Record{Parent: 7, Child: 8, Action: compat.ActionPing}.Append(nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := net.Dial("unix", path)
		if err == nil {
			_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
			echo := make([]byte, len(ping))
			_, err = nc.Write(ping)
			if err == nil {
				_, err = io.ReadFull(nc, echo)
			}
			nc.Close()
			if err == nil && bytes.Equal(echo, ping) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PING echo on %s: %v\n%s", path, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The compatibility socket, passed by systemd under FileDescriptorName=
// compat next to the agent's own, and on a path of its own.
func TestServeCompatSocket(t *testing.T) {
	t.Run("socket activation", func(t *testing.T) {
		root, dir := testCgroupRoot(t), t.TempDir()
		main, compatPath := filepath.Join(dir, "orphand.sock"), filepath.Join(dir, "compat.sock")
		files := []*os.File{listenerFile(t, main), listenerFile(t, compatPath)}
		log := startServe(t, files, []string{"orphand.socket", "compat"},
			"--socket", filepath.Join(dir, "unused.sock"), "--backend", "cgroupfs", "--cgroup-root", root,
			"--state-dir", filepath.Join(dir, "state"), "--config", emptyConfig(t), "--compat-signal", "TERM")
		pingUntilServed(t, compatPath, log)
		for _, want := range []string{"serving the compatibility socket passed by systemd", "serving the socket passed by systemd", "signal=terminated"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, log.String())
			}
		}
	})
	t.Run("own listener", func(t *testing.T) {
		root, dir := testCgroupRoot(t), t.TempDir()
		compatPath := filepath.Join(dir, "old", "orphand.sock")
		log := startServe(t, nil, nil,
			"--socket", filepath.Join(dir, "orphand.sock"), "--backend", "cgroupfs", "--cgroup-root", root,
			"--state-dir", filepath.Join(dir, "state"), "--config", emptyConfig(t), "--compat-socket", compatPath)
		pingUntilServed(t, compatPath, log)
		if fi, err := os.Stat(compatPath); err != nil || fi.Mode().Perm() != 0o666 {
			t.Fatalf("compat socket %v %v", fi, err)
		}
	})
}

func TestCompatFlagsChecked(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--compat-socket", "relative.sock"},
		{"serve", "--compat-signal", "NOPE"},
		{"serve", "--socket", "/run/x.sock", "--compat-socket", "/run/x.sock"},
	} {
		code, _, stderr := run(append(args, "--config", emptyConfig(t))...)
		if code != exitUsage || !strings.Contains(stderr, "compat") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
