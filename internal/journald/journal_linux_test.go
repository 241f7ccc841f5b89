package journald

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/internal/testutil"
)

// serviceEnv makes the test binary the service of TestJournalctlFindsFields:
// it logs through Handler to the real journald and exits.
const serviceEnv = "JOURNALD_TEST_SERVICE_GROUP"

func TestMain(m *testing.M) {
	if id := os.Getenv(serviceEnv); id != "" {
		os.Exit(serviceMain(id))
	}
	os.Exit(m.Run())
}

// bigBlob is the size of the entry that must go through a memfd.
const bigBlob = 300 << 10

// serviceMain runs as a systemd service: stderr is the journal, and
// $JOURNAL_STREAM says so.
func serviceMain(id string) int {
	if !StderrIsJournal() {
		fmt.Fprintf(os.Stderr, "stderr is not the journal (JOURNAL_STREAM=%q)\n", os.Getenv("JOURNAL_STREAM"))
		return 1
	}
	c, err := Dial(SocketPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	// Below the big entry's size, whatever the kernel's defaults: that entry
	// must take the memfd path.
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var failed bool
	log := slog.New(NewHandler(c, Options{Prefix: "ORPHAND_", Identifier: "orphand-test", Fallback: &failWriter{&failed}}))
	log.Info("group registered", "group", id, "spawner_pid", os.Getpid(), "event", "registered")
	log.Warn("group stuck", "group", id, "event", "stuck", "blob", strings.Repeat("b", bigBlob))
	log.Info("another group", "group", "not-"+id)
	if failed {
		return 1
	}
	return 0
}

// failWriter notes that the handler fell back: the journal refused an entry.
type failWriter struct{ failed *bool }

func (w *failWriter) Write(p []byte) (int, error) {
	*w.failed = true
	return os.Stderr.Write(p)
}

// A service that logs through Handler is found by its fields in a real
// journald: `journalctl -u UNIT ORPHAND_GROUP=ID` lists exactly its lines
// about that group, with their priority and fields, the large one (sent
// through a memfd) whole.
func TestJournalctlFindsFields(t *testing.T) {
	if !nspawn.RunSelf(t, nspawn.Options{Timeout: 3 * time.Minute}) {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := "journald-test-" + testutil.RandHex(4) + ".service"
	id := testutil.RandHex(6)
	out, err := exec.Command("systemd-run", "--unit", unit, "--wait", "--collect", "--quiet",
		"--setenv", serviceEnv+"="+id, self).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-run: %v\n%s\n%s", err, out, journalText(t, "-u", unit))
	}
	// Every entry sent before --sync is written once it returns.
	if out, err := exec.Command("journalctl", "--sync").CombinedOutput(); err != nil {
		t.Fatalf("journalctl --sync: %v\n%s", err, out)
	}
	entries := journalJSON(t, "-u", unit, "ORPHAND_GROUP="+id)
	if len(entries) != 2 {
		t.Fatalf("journalctl -u %s ORPHAND_GROUP=%s found %d entries, want 2:\n%s", unit, id, len(entries), journalText(t, "-u", unit))
	}
	reg, stuck := entries[0], entries[1]
	for name, want := range map[string]string{
		"MESSAGE":             fmt.Sprintf("group registered group=%s spawner_pid=%s event=registered", id, reg["ORPHAND_SPAWNER_PID"]),
		"PRIORITY":            "6",
		"SYSLOG_IDENTIFIER":   "orphand-test",
		"ORPHAND_EVENT":       "registered",
		"ORPHAND_SPAWNER_PID": reg["_PID"], // the service's own pid, as journald saw it
	} {
		if reg[name] != want {
			t.Errorf("registered entry: %s = %q, want %q", name, reg[name], want)
		}
	}
	if stuck["PRIORITY"] != "4" || stuck["ORPHAND_EVENT"] != "stuck" || len(stuck["ORPHAND_BLOB"]) != bigBlob {
		t.Errorf("stuck entry: PRIORITY %q, ORPHAND_EVENT %q, ORPHAND_BLOB of %d bytes (want 4, stuck, %d)",
			stuck["PRIORITY"], stuck["ORPHAND_EVENT"], len(stuck["ORPHAND_BLOB"]), bigBlob)
	}
	if n := len(journalJSON(t, "-u", unit, "ORPHAND_EVENT=stuck")); n != 1 {
		t.Errorf("journalctl ORPHAND_EVENT=stuck found %d entries, want 1", n)
	}
}

// journalJSON runs journalctl with args and returns its entries' string
// fields.
func journalJSON(t *testing.T, args ...string) []map[string]string {
	t.Helper()
	out, err := exec.Command("journalctl", append([]string{"--no-pager", "-o", "json", "--all"}, args...)...).Output()
	if err != nil {
		t.Fatalf("journalctl %v: %v", args, err)
	}
	var entries []map[string]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("journalctl -o json line %q: %v", sc.Bytes(), err)
		}
		e := map[string]string{}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				e[k] = s
			}
		}
		entries = append(entries, e)
	}
	return entries
}

// journalText is the unit's log as text, for failure messages.
func journalText(t *testing.T, args ...string) string {
	out, _ := exec.Command("journalctl", append([]string{"--no-pager", "-o", "short-precise"}, args...)...).CombinedOutput()
	return string(out)
}
