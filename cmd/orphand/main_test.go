package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/internal/version"
	"github.com/orphand/orphand/ipc"
)

// mainEnv makes the test binary behave as orphand itself (for tests that
// need a separate process: signals, socket activation).
const mainEnv = "ORPHAND_CMD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = dispatch(args, &o, &e)
	return code, o.String(), e.String()
}

func TestDispatch(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("backend = \"auto\"\ntypo = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{[]string{"version"}, exitOK, version.String() + "\n", ""},
		{[]string{"--version"}, exitOK, version.String(), ""},
		{[]string{"serve", "--version"}, exitOK, version.String(), ""},
		{[]string{"--help"}, exitOK, "orphand serve --help", ""},
		{[]string{"help"}, exitOK, "Commands:", ""},
		{[]string{"serve", "--help"}, exitOK, "--cgroup-root PATH", ""},
		{[]string{"serve", "-h"}, exitOK, "[limits]", ""},
		{[]string{"version", "extra"}, exitUsage, "", "takes no arguments"},
		{[]string{"fly"}, exitUsage, "", `unknown command "fly"`},
		{[]string{"--bogus"}, exitUsage, "", "-bogus"},
		{[]string{"serve", "stray"}, exitUsage, "", `unexpected argument "stray"`},
		{[]string{"--backend", "docker", "--config", filepath.Join(dir, "none.toml")}, exitUsage, "", `config`},
		{[]string{"--backend", "docker", "--config", "/nonexistent/orphand.toml"}, exitUsage, "", "no such file"},
		{[]string{"--config", bad}, exitUsage, "", "unknown key typo"},
		{[]string{"--log-format", "xml", "--config", filepath.Join(dir, "absent")}, exitUsage, "", "absent"},
	}
	for _, tt := range tests {
		code, stdout, stderr := run(tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("orphand %q: code %d, stdout %q, stderr %q; want %d, %q, %q",
				tt.args, code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
		}
		if tt.code == exitUsage && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("orphand %q: usage error spans lines: %q", tt.args, stderr)
		}
	}
}

// A bad flag value is a one-line usage error naming the value.
func TestBadFlagValues(t *testing.T) {
	cfg := emptyConfig(t)
	for _, args := range [][]string{
		{"--backend", "docker"},
		{"--log-level", "loud"},
		{"--log-format", "xml"},
		{"--socket", "relative.sock"},
		{"--state-dir", "state"},
	} {
		code, _, stderr := run(append(args, "--config", cfg)...)
		if code != exitUsage || !strings.Contains(stderr, args[1]) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: code %d stderr %q", args, code, stderr)
		}
	}
}

func TestListenOwn(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "orphand.sock")

	ln, err := listenOwn(path, log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o666 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket %v %v", fi, err)
	}
	if _, err := listenOwn(path, log); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("second agent on a live socket: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket not removed on close: %v", err)
	}

	// A stale socket (its agent died without removing it) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err = listenOwn(path, log)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ln.Close()

	// Anything else at the path is left alone.
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := listenOwn(path, log); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
}

// testCgroupRoot returns a fresh cgroup path for a real agent, removed when
// the test ends.
func testCgroupRoot(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Discover()
	if err != nil || m.Path == "" {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	rel := "/orphand-test-cmd-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		dir := filepath.Join(m.Path, rel)
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return rel
}

// The agent as systemd runs it: a socket passed by activation, READY,
// watchdog pings while healthy, STOPPING on SIGTERM, exit 0.
func TestServeUnderSystemdProtocols(t *testing.T) {
	root := testCgroupRoot(t)
	dir := t.TempDir()
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	sock := filepath.Join(dir, "activated.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	lnFile, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the child holds the socket through the file now
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// LISTEN_PID must be the agent's own pid: sh sets it, then execs.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, self,
		"serve", "--socket", filepath.Join(dir, "unused.sock"), "--backend", "cgroupfs",
		"--cgroup-root", root, "--state-dir", filepath.Join(dir, "state"),
		"--config", emptyConfig(t), "--log-format", "json")
	cmd.Env = append(os.Environ(), mainEnv+"=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=orphand.socket",
		"NOTIFY_SOCKET="+notifyPath, "WATCHDOG_USEC=200000")
	cmd.ExtraFiles = []*os.File{lnFile}
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lnFile.Close()
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	messages := make(chan string, 100)
	go func() { // ends when notify is closed
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				close(messages)
				return
			}
			messages <- string(buf[:n])
		}
	}()
	expect := func(what string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case m, ok := <-messages:
				if !ok {
					t.Fatalf("notify socket closed before %q", what)
				}
				if strings.Contains(m, what) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q from the agent; its log:\n%s", what, stderr.String())
			}
		}
	}
	expect("READY=1")
	expect("WATCHDOG=1")

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(`{"op":"hello","id":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var r ipc.Response
	if err := json.Unmarshal(line, &r); err != nil || !r.OK || r.Backend != "cgroupfs" {
		t.Fatalf("hello through the activated socket: %s", line)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, "unused.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the agent listened on --socket although systemd passed one")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expect("STOPPING=1")
	err = cmd.Wait()
	exited = true
	notify.Close()
	for range messages { // drain until the reader goroutine ends
	}
	if err != nil {
		t.Fatalf("agent exit: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{`"msg":"agent serving"`, `"msg":"agent stopped"`, "serving the socket passed by systemd"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}
}

// emptyConfig returns an empty configuration file: defaults, whatever the
// machine's /etc holds.
func emptyConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// --backend proc serves, and hello says how it follows forks (with the
// proc connector when root in the initial namespaces, as CI is).
func TestBackendProc(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "serve", "--backend", "proc", "--socket", sock,
		"--state-dir", filepath.Join(dir, "state"), "--config", emptyConfig(t))
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	var c net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent does not listen: %v\n%s", err, stderr.String())
		}
	}
	if _, err := c.Write([]byte(`{"op":"hello","id":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := "proc-rescan"
	if os.Geteuid() == 0 {
		want = "proc-connector"
	}
	var r ipc.Response
	if err := json.Unmarshal(line, &r); err != nil || !r.OK || r.Backend != "proc" || !slices.Contains(r.Features, want) {
		t.Fatalf("hello: %s; want the proc backend with %s", line, want)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("agent exit: %v\n%s", err, stderr.String())
	}
}
