package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/orphand/orphand/agent/config"
	"github.com/orphand/orphand/ipc"
)

// unitOptions reads contrib/systemd/name: section -> key -> values.
func unitOptions(t *testing.T, name string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "contrib", "systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m := map[string]map[string][]string{}
	for _, o := range opts {
		if m[o.Section] == nil {
			m[o.Section] = map[string][]string{}
		}
		m[o.Section][o.Name] = append(m[o.Section][o.Name], o.Value)
	}
	return m
}

// one returns the single value of a key, failing if it is not set once.
func one(t *testing.T, m map[string]map[string][]string, section, key string) string {
	t.Helper()
	v := m[section][key]
	if len(v) != 1 {
		t.Errorf("[%s] %s is set %d times, want once", section, key, len(v))
		return ""
	}
	return v[0]
}

// TestUnitsMatchTheAgent: the units agree with the agent's defaults, the
// packaged paths and what the issue asks of them. (The container tests
// prove that they work; this says which setting broke when one changes.)
func TestUnitsMatchTheAgent(t *testing.T) {
	sock := unitOptions(t, "orphand.socket")
	for key, want := range map[string]string{
		"ListenStream": ipc.DefaultSocket, "SocketMode": "0666", "RemoveOnStop": "yes",
	} {
		if got := one(t, sock, "Socket", key); got != want {
			t.Errorf("orphand.socket: %s=%s, want %s", key, got, want)
		}
	}
	if got := one(t, sock, "Install", "WantedBy"); got != "sockets.target" {
		t.Errorf("orphand.socket: WantedBy=%s, want sockets.target", got)
	}

	// The compatibility socket: in the agent's runtime directory, handed
	// to orphand.service under the name the agent looks for
	// (cmd/orphand/listen.go, compatFDName), started by nothing until an
	// administrator enables it.
	compat := unitOptions(t, "orphand-compat.socket")
	for key, want := range map[string]string{
		"ListenStream": filepath.Join(filepath.Dir(ipc.DefaultSocket), "compat.sock"), "FileDescriptorName": "compat",
		"Service": "orphand.service", "SocketMode": "0666", "RemoveOnStop": "yes",
	} {
		if got := one(t, compat, "Socket", key); got != want {
			t.Errorf("orphand-compat.socket: %s=%s, want %s", key, got, want)
		}
	}
	if got := one(t, compat, "Install", "WantedBy"); got != "sockets.target" {
		t.Errorf("orphand-compat.socket: WantedBy=%s, want sockets.target", got)
	}

	svc := unitOptions(t, "orphand.service")
	def := config.Default()
	for key, want := range map[string]string{
		"Type": "notify", "Restart": "always", "Delegate": "yes",
		// The socket's directory: kept across restarts, or a restart would
		// delete the socket systemd listens on.
		"RuntimeDirectory": filepath.Base(filepath.Dir(ipc.DefaultSocket)), "RuntimeDirectoryPreserve": "yes",
		"RuntimeDirectoryMode": "0755",
		"StateDirectory":       strings.TrimPrefix(def.StateDir, "/var/lib/"),
		// Stopping the agent must not kill the processes of groups that
		// live in its delegated subtree (cgroupfs backend).
		"KillMode": "process",
	} {
		if got := one(t, svc, "Service", key); got != want {
			t.Errorf("orphand.service: %s=%s, want %s", key, got, want)
		}
	}
	if exec := strings.Fields(one(t, svc, "Service", "ExecStart")); len(exec) == 0 || exec[0] != "/usr/sbin/orphand" {
		t.Errorf("orphand.service: ExecStart=%v, want /usr/sbin/orphand (where the packages install it)", exec)
	}
	if one(t, svc, "Service", "WatchdogSec") == "" {
		t.Error("orphand.service: no WatchdogSec=")
	}
	store, err := strconv.Atoi(one(t, svc, "Service", "FileDescriptorStoreMax"))
	if err != nil || store < 1 {
		t.Fatalf("orphand.service: FileDescriptorStoreMax=%d (%v), want a positive number", store, err)
	}
	// systemd hands the stored descriptors back at start, above fd 3: the
	// soft limit the agent starts with must hold them all, plus what the
	// default totals let callers make it hold (else it lowers them), plus
	// a margin for its own files.
	cfg, err := def.Agent()
	if err != nil {
		t.Fatal(err)
	}
	files, bounded := cfg.Limits.FilesNeeded()
	if !bounded {
		t.Fatal("the default limits are unbounded: no LimitNOFILE= can be checked against them")
	}
	nofile, err := strconv.Atoi(one(t, svc, "Service", "LimitNOFILE"))
	if need := store + files + 256; err != nil || nofile < need {
		t.Errorf("orphand.service: LimitNOFILE=%d (%v), want at least %d (fd store %d + default totals %d + 256)", nofile, err, need, store, files)
	}
	for _, key := range []string{"Requires", "After"} {
		if got := one(t, svc, "Unit", key); got != "orphand.socket" {
			t.Errorf("orphand.service: %s=%s, want orphand.socket", key, got)
		}
	}
	// Enabled through its socket only: the first connection starts it.
	if got := svc["Install"]["WantedBy"]; len(got) > 0 {
		t.Errorf("orphand.service: WantedBy=%v; the socket starts the service, so nothing else should", got)
	}
	// ProtectControlGroups=yes would make the cgroup tree read-only: the
	// kill pipeline writes cgroup.kill.
	if got := one(t, svc, "Service", "ProtectControlGroups"); got != "no" {
		t.Errorf("orphand.service: ProtectControlGroups=%s; the agent writes cgroup files", got)
	}
	if caps := one(t, svc, "Service", "CapabilityBoundingSet"); !strings.Contains(caps, "CAP_KILL") {
		t.Errorf("orphand.service: CapabilityBoundingSet=%s lacks CAP_KILL: the agent signals other users' processes", caps)
	}
}

// TestUserUnitsMatchTheAgent: the per-user agent's units agree with where
// the agent and its clients look, and use only what a user manager can
// apply without privileges. (The container tests prove that they work.)
func TestUserUnitsMatchTheAgent(t *testing.T) {
	sock := unitOptions(t, "user/orphand.socket")
	for key, want := range map[string]string{
		// %t is the user's runtime directory, $XDG_RUNTIME_DIR: where
		// ipc.UserSocket looks.
		"ListenStream": "%t/" + ipc.UserSocketName, "SocketMode": "0600", "DirectoryMode": "0700", "RemoveOnStop": "yes",
	} {
		if got := one(t, sock, "Socket", key); got != want {
			t.Errorf("user/orphand.socket: %s=%s, want %s", key, got, want)
		}
	}
	if got := one(t, sock, "Install", "WantedBy"); got != "sockets.target" {
		t.Errorf("user/orphand.socket: WantedBy=%s, want sockets.target", got)
	}

	svc := unitOptions(t, "user/orphand.service")
	for key, want := range map[string]string{
		"Type": "notify", "Restart": "always", "Delegate": "yes", "KillMode": "process",
		"ExecStart": "/usr/sbin/orphand serve --user", "NoNewPrivileges": "yes",
	} {
		if got := one(t, svc, "Service", key); got != want {
			t.Errorf("user/orphand.service: %s=%s, want %s", key, got, want)
		}
	}
	if store, err := strconv.Atoi(one(t, svc, "Service", "FileDescriptorStoreMax")); err != nil || store < 1 {
		t.Errorf("user/orphand.service: FileDescriptorStoreMax=%d (%v), want a positive number", store, err)
	}
	for _, key := range []string{"Requires", "After"} {
		if got := one(t, svc, "Unit", key); got != "orphand.socket" {
			t.Errorf("user/orphand.service: %s=%s, want orphand.socket", key, got)
		}
	}
	if got := svc["Install"]["WantedBy"]; len(got) > 0 {
		t.Errorf("user/orphand.service: WantedBy=%v; the socket starts the service, so nothing else should", got)
	}
	// A user manager cannot raise the hard file limit (the agent raises its
	// soft limit itself, so @resources must stay allowed), has no
	// capabilities to drop, needs privileges or user namespaces for the
	// mount-namespace options, and maps StateDirectory= elsewhere than
	// $XDG_STATE_HOME before systemd 254.
	for _, key := range []string{
		"LimitNOFILE", "CapabilityBoundingSet", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
		"PrivateNetwork", "PrivateIPC", "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
		"StateDirectory", "RuntimeDirectory", "User", "DynamicUser",
	} {
		if v, ok := svc["Service"][key]; ok {
			t.Errorf("user/orphand.service: %s=%v has no place in a user unit", key, v)
		}
	}
	for _, f := range svc["Service"]["SystemCallFilter"] {
		if strings.HasPrefix(f, "~") && strings.Contains(f, "@resources") {
			t.Errorf("user/orphand.service: SystemCallFilter=%s denies setrlimit, with which the agent raises its file limit", f)
		}
	}
}
