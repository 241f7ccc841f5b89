package family

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// perlPeer runs testdata/rawpeer.pl against m with args, through prefix
// (for example setpriv), and returns what it printed. The script goes in on
// stdin, so other users need no access to the source tree.
func perlPeer(t *testing.T, m *Master, prefix []string, args ...string) string {
	t.Helper()
	perl := testutil.RequireCommand(t, "perl")
	script, err := os.ReadFile("testdata/rawpeer.pl")
	must(t, err)
	argv := append(append(prefix, perl, "-", m.ConnectionInfo()), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(script)
	cmd.Stderr = testWriter{t}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v (printed %q)", argv, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestHostileOtherUID(t *testing.T) {
	testutil.RequireRoot(t)
	setpriv := testutil.RequireCommand(t, "setpriv")
	// Let uid 65534 reach the master's directory, to see the two defences
	// one at a time.
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		must(t, os.Chmod(d, 0o711))
	}
	m := newMaster(t, Options{Dir: dir})
	nobody := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}

	// The private directory is 0700: another user cannot even connect.
	st, err := os.Stat(filepath.Dir(m.ConnectionInfo()))
	must(t, err)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory mode %v, want 0700", st.Mode().Perm())
	}
	if out := perlPeer(t, m, nobody); !strings.HasPrefix(out, "connect: Permission denied") {
		t.Fatalf("uid 65534 through a 0700 directory: %q", out)
	}

	// With the directory and the socket opened, SO_PEERCRED is what
	// refuses it.
	must(t, os.Chmod(filepath.Dir(m.ConnectionInfo()), 0o711))
	must(t, os.Chmod(m.ConnectionInfo(), 0o777))
	out := perlPeer(t, m, nobody)
	if !strings.HasPrefix(out, "E "+CodePermissionDenied+" peer uid 65534") {
		t.Fatalf("uid 65534 through an open directory: %q, want a permission_denied error frame", out)
	}
	expectNoChildren(t, m)
	// The master's own uid still gets in, from Perl as from Go.
	if out := perlPeer(t, m, nil); out != "W 0" {
		t.Fatalf("same uid: %q, want a welcome with CID 0", out)
	}
}

func TestDescendantsOnly(t *testing.T) {
	// "probed" uses SO_PEERPIDFD where the kernel has it (Linux 6.5+) and
	// the /proc fallback elsewhere; "fallback" forces the fallback.
	for _, fallback := range []bool{false, true} {
		name := map[bool]string{false: "probed", true: "fallback"}[fallback]
		t.Run(name, func(t *testing.T) {
			m := newMaster(t, Options{DescendantsOnly: true, noPeerPidfd: fallback})
			t.Logf("SO_PEERPIDFD in use: %v", m.peers.pidfd)
			if out := perlPeer(t, m, nil); out != "W 0" {
				t.Fatalf("child: %q, want W 0", out)
			}
			// sh forks perl: a grandchild.
			if out := perlPeer(t, m, []string{"/bin/sh", "-c", `"$@"; :`, "sh"}); out != "W 1" {
				t.Fatalf("grandchild: %q, want W 1", out)
			}
			out := perlPeer(t, m, nil, "orphan")
			if !strings.HasPrefix(out, "E "+CodePermissionDenied) || !strings.Contains(out, "not a descendant") {
				t.Fatalf("re-parented process: %q, want permission_denied", out)
			}
			// The master's own process counts as its own.
			self, err := NewChild(m.ConnectionInfo(), "self")
			must(t, err)
			self.Close()
		})
	}
}

func TestParsePPid(t *testing.T) {
	for in, want := range map[string]int{
		"42 (sh) S 7 42 42 0 -1":             7,
		"9 (a) b) (c) R 1 9 9":               1,
		"3 (name with spaces) Z 0 0 0 0 0 0": 0,
	} {
		got, err := parsePPid(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("parsePPid(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S", "1 (x) S notanumber"} {
		if _, err := parsePPid(strings.NewReader(bad)); err == nil {
			t.Errorf("parsePPid(%q) succeeded", bad)
		}
	}
}

func FuzzParsePPid(f *testing.F) {
	f.Add([]byte("42 (sh) S 7 42 42 0 -1"))
	f.Add([]byte("9 (a) b) (c) R 1 9 9"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ppid, err := parsePPid(bytes.NewReader(in))
		if err == nil && !bytes.Contains(in, []byte(fmt.Sprint(ppid))) {
			t.Fatalf("parsePPid(%q) = %d, which is not in the input", in, ppid)
		}
	})
}
