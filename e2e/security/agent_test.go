package security

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// waitLong bounds every wait of the suite: generous, for a loaded 2-core
// machine. Nothing is asserted about how fast anything happens.
const waitLong = 2 * time.Minute

// agent is an orphand this test started.
type agent struct {
	bins     bins
	pid      int
	socket   string
	mount    string // the cgroup2 mount point
	root     string // the agent's cgroup root, relative to mount
	stateDir string
	log      *testutil.SyncBuffer
}

// startAgent runs orphand with the cgroupfs backend under a cgroup root of
// its own and config (TOML) until the test ends; the cleanup stops it with
// SIGTERM and fails the test if it did not stop cleanly, left a cgroup, or
// logged a panic or a data race.
func startAgent(t testing.TB, config string) *agent {
	t.Helper()
	return startBinary(t, config, binaries(t).orphand)
}

// startBinary is startAgent with the orphand binary named.
func startBinary(t testing.TB, config, orphand string) *agent {
	t.Helper()
	h := run.NewHost(t, config) // other uids must reach the socket: its directory is theirs to enter
	d := h.Start(t, harness.Serve{Bin: orphand, Backend: "cgroupfs"})
	a := &agent{
		bins:     binaries(t),
		pid:      d.Pid(),
		socket:   h.Socket,
		mount:    h.Mount,
		root:     h.Root,
		stateDir: h.StateDir,
		log:      d.Log,
	}
	t.Cleanup(func() { a.stop(t, h, d) })
	if err := d.WaitReady(waitLong); err != nil {
		t.Fatalf("%v\n%s", err, a.log)
	}
	return a
}

func (a *agent) stop(t testing.TB, h *harness.Host, d *harness.Daemon) {
	t.Helper()
	if err := d.Stop(waitLong); err != nil {
		t.Errorf("orphand: %v", err)
	}
	log := a.log.String()
	for _, bad := range []string{"panic:", "DATA RACE", "fatal error:"} {
		if strings.Contains(log, bad) {
			t.Errorf("orphand's log has %q", bad)
		}
	}
	if left := h.LeftGroups(); len(left) > 0 {
		t.Errorf("orphand left group cgroups under %s: %v", h.RootDir(), left)
	}
	if t.Failed() {
		t.Logf("orphand's log:\n%s", log)
	}
}

// status asks root's view of the agent's health.
func (a *agent) status(t testing.TB) *ipc.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := ipc.Dial(ctx, a.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// usage is what the agent process holds: open descriptors and resident
// memory.
type usage struct {
	fds    int
	rssKiB int
}

func (u usage) String() string { return fmt.Sprintf("%d fds, RSS %d KiB", u.fds, u.rssKiB) }

func (a *agent) usage(t testing.TB) usage {
	t.Helper()
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(a.pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(a.pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	u := usage{fds: len(fds)}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			u.rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	return u
}

// decode reads one JSON response line.
func decode(t testing.TB, line []byte) ipc.Response {
	t.Helper()
	var r ipc.Response
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("answer %q is not a response: %v", line, err)
	}
	return r
}

// deadline bounds a polling loop.
type deadline struct{ end time.Time }

func newDeadline() deadline { return deadline{time.Now().Add(waitLong)} }

// check fails the test once the deadline has passed, and else pauses a
// little before the next poll.
func (d deadline) check(t testing.TB, what string) {
	t.Helper()
	if time.Now().After(d.end) {
		t.Fatalf("waited %v for %s", waitLong, what)
	}
	time.Sleep(20 * time.Millisecond)
}
