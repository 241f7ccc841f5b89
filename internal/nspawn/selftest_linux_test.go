package nspawn

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostScript checks inside one boot what callers rely on. Each check
// prints what it does, so a failure shows where.
const hostScript = `set -eu
step() { echo "== $*"; }
step is-system-running
state=$(systemctl is-system-running --wait || true)
echo "$state"
if [ "$state" != running ]; then systemctl --failed --no-pager; exit 10; fi
step PID 1 is systemd
[ "$(cat /proc/1/comm)" = systemd ]
step cgroup v2 inside, unified
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]
step system bus
busctl --system --no-pager get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager Version
step systemd-run --scope, escapees included, ended by cgroup.kill
systemd-run --quiet --scope --unit=selftest-scope -- sh -c 'setsid sleep 600 & sleep 600' &
runner=$!
i=0; until systemctl is-active --quiet selftest-scope.scope; do i=$((i+1)); [ $i -lt 1200 ] || exit 11; sleep 0.05; done
cg=/sys/fs/cgroup$(systemctl show -P ControlGroup selftest-scope.scope)
i=0; until [ "$(wc -l < $cg/cgroup.procs)" -ge 3 ]; do i=$((i+1)); [ $i -lt 1200 ] || exit 12; sleep 0.05; done
echo "scope $cg holds $(wc -l < $cg/cgroup.procs) processes"
echo 1 > $cg/cgroup.kill
i=0; while [ -e $cg ] && grep -q 'populated 1' $cg/cgroup.events; do i=$((i+1)); [ $i -lt 1200 ] || exit 13; sleep 0.05; done
wait $runner || echo "systemd-run ended with $?"
i=0; while systemctl is-active --quiet selftest-scope.scope; do i=$((i+1)); [ $i -lt 1200 ] || exit 14; sleep 0.05; done
step a unit from Options.Units was installed and enabled
systemctl is-active selftest-hello.service
step systemctl restart of another unit, journalctl
systemctl restart selftest-hello.service
journalctl --no-pager -u selftest-hello.service | grep -c 'hello from the selftest unit'
step environment and working directory
[ "$ORPHAND_IN_NSPAWN" = 1 ] && [ "$TRICKY" = "a 'b' \"c\" \$d" ] && [ "$(pwd)" = /mnt/host ]
step share is writable, extra bind is read-only
echo inside > /mnt/host/written-inside
if touch /mnt/ro/x 2>/dev/null; then echo "read-only bind is writable"; exit 15; fi
cat /mnt/ro/marker
step root is writable and starts clean
[ ! -e /var/tmp/selftest-was-here ] && touch /var/tmp/selftest-was-here
step tools callers rely on
perl -MJSON::PP -MIO::Socket::UNIX -e 'print encode_json({ok => 1}), "\n"'
python3 -c 'import json, socket; print(json.dumps({"ok": 1}))'
rpm --version
step all checks passed
`

func TestSystemdHost(t *testing.T) {
	Require(t)
	before := hostState()
	share, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "marker"), []byte("read-only bind visible\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	code, err := Run(t.Context(), Options{
		Share:   share,
		Binds:   []Bind{{Host: ro, Guest: "/mnt/ro", ReadOnly: true}},
		Script:  hostScript,
		Env:     map[string]string{"TRICKY": `a 'b' "c" $d`},
		Units:   map[string]string{"selftest-hello.service": "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/echo hello from the selftest unit\n[Install]\nWantedBy=multi-user.target\n"},
		Output:  t.Output(),
		Console: &console,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("a check inside failed: exit status %d (output above); console:\n%s", code, console.String())
	}
	if b, err := os.ReadFile(filepath.Join(share, "written-inside")); err != nil || string(b) != "inside\n" {
		t.Errorf("file written to the share: %q, %v", b, err)
	}
	if !strings.Contains(console.String(), "systemd 252") {
		t.Errorf("console did not show systemd booting:\n%s", console.String())
	}
	checkNothingLeft(t, before)

	// A second boot starts from the pristine rootfs: the script's
	// "starts clean" step would fail if the first boot's write survived.
	code, err = Run(t.Context(), Options{Script: "test ! -e /var/tmp/selftest-was-here"})
	if err != nil || code != 0 {
		t.Errorf("second boot saw the first one's writes: %d, %v", code, err)
	}
}

func TestExitCode(t *testing.T) {
	Require(t)
	before := hostState()
	var out bytes.Buffer
	code, err := Run(t.Context(), Options{Script: "echo to-stdout; echo to-stderr >&2; exit 42", Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code != 42 {
		t.Errorf("exit code %d, want 42", code)
	}
	for _, want := range []string{"to-stdout\n", "to-stderr\n", "script exited with status 42; container journal", "Reached target multi-user.target"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	checkNothingLeft(t, before)
}

func TestTimeoutKillsEverything(t *testing.T) {
	Require(t)
	before := hostState()
	share := t.TempDir()
	began := time.Now()
	code, err := Run(t.Context(), Options{
		Share:   share,
		Script:  "touch started; setsid sleep 600 & exec sleep 600",
		Timeout: 10 * time.Second,
	})
	t.Logf("returned after %v", time.Since(began).Round(time.Millisecond))
	var nerr *Error
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &nerr) {
		t.Fatalf("Run = %d, %v; want an *Error wrapping ErrTimeout and DeadlineExceeded", code, err)
	}
	if _, serr := os.Stat(filepath.Join(share, "started")); serr != nil {
		t.Logf("the script had not started when the timeout hit (slow machine?): %v", serr)
	}
	if nerr.Console == "" {
		t.Errorf("the error carries no console output: %v", err)
	}
	checkNothingLeft(t, before)
}

// cancelWriter cancels a context when it sees a marker in the output.
type cancelWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.cancel()
	}
	return len(p), nil
}

func TestCancelKillsEverything(t *testing.T) {
	Require(t)
	before := hostState()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &cancelWriter{marker: "all running\n", cancel: cancel}
	// A service of its own and a scope: the kill must reach what systemd
	// started too, not only the script.
	script := `systemd-run --quiet --unit=selftest-bg sleep 600
systemd-run --quiet --scope sleep 600 &
sleep 1; echo all running; exec sleep 600`
	code, err := Run(ctx, Options{Script: script, Output: w})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %d, %v; want context.Canceled", code, err)
	}
	checkNothingLeft(t, before)
}

func TestScriptEndsBoot(t *testing.T) {
	Require(t)
	code, err := Run(t.Context(), Options{Script: "echo powering off; systemctl poweroff; sleep 600"})
	var nerr *Error
	if !errors.As(err, &nerr) || !strings.Contains(err.Error(), "before the script reported a status") {
		t.Fatalf("Run = %d, %v; want an *Error saying the script never reported", code, err)
	}
	if !strings.Contains(nerr.Journal, "systemd") {
		t.Errorf("the error carries no journal: %v", err)
	}
}

func TestParallelRuns(t *testing.T) {
	Require(t)
	before := hostState()
	share := t.TempDir()
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"a", "b", "c"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				code, err := Run(t.Context(), Options{
					Share:  share,
					Script: "systemctl is-system-running --wait; hostname > " + name,
					Output: t.Output(),
				})
				if err != nil || code != 0 {
					t.Fatalf("Run = %d, %v", code, err)
				}
			})
		}
	})
	seen := map[string]bool{}
	for _, name := range []string{"a", "b", "c"} {
		b, err := os.ReadFile(filepath.Join(share, name))
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.TrimSpace(string(b))] = true
	}
	if len(seen) != 3 {
		t.Errorf("machine names not unique: %v", seen)
	}
	checkNothingLeft(t, before)
}

// TestRunSelf is the pattern callers copy: the same test runs on the host,
// where it boots the container, and inside it, where it does the work.
func TestRunSelf(t *testing.T) {
	if !RunSelf(t, Options{}) {
		return
	}
	if b, err := os.ReadFile("/proc/1/comm"); err != nil || strings.TrimSpace(string(b)) != "systemd" {
		t.Errorf("PID 1 is %q (%v), want systemd", b, err)
	}
	if _, err := os.Stat("doc.go"); err != nil {
		t.Errorf("the package's source directory is not the working directory: %v", err)
	}
	if _, err := os.Stat("/run/dbus/system_bus_socket"); err != nil {
		t.Errorf("no system bus: %v", err)
	}
}
