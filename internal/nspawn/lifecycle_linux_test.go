package nspawn

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// helperEnv makes TestHelperOwner boot a container and wait to be killed.
const helperEnv = "ORPHAND_NSPAWN_TEST_HELPER"

// TestHelperOwner is not a test: TestOwnerKilled runs it in a child process.
func TestHelperOwner(t *testing.T) {
	share := os.Getenv(helperEnv)
	if share == "" {
		return
	}
	code, err := Run(context.Background(), Options{Share: share, Script: "touch started; setsid sleep 600 & exec sleep 600"})
	t.Errorf("the run was meant to be killed, yet it returned %d, %v", code, err)
}

// TestOwnerKilled kills a test process in the middle of a run, as
// go test -timeout or an OOM kill would: no cleanup of its own runs, and the
// container must still be gone soon after.
func TestOwnerKilled(t *testing.T) {
	Require(t)
	before := hostState()
	share := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperOwner$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+share)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitFor(t, 2*time.Minute, "the helper's container to start the script", func() bool {
		_, err := os.Stat(filepath.Join(share, "started"))
		return err == nil
	})
	if live := leftovers(pid); len(live) == 0 {
		t.Fatal("found nothing of the live run: the leftovers check cannot see what it should")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, time.Minute, "the guard to end the dead owner's container", func() bool { return len(leftovers(pid)) == 0 })
	if l := leftovers(pid); len(l) > 0 {
		t.Errorf("left behind by the killed owner:\n%s\nits output:\n%s", strings.Join(l, "\n"), out)
	}
	if after := hostState(); !equalStrings(before, after) {
		t.Errorf("host state changed: %q -> %q", before, after)
	}
}

// waitFor polls cond until it holds or limit passes (then the caller's
// next check reports what is wrong). Polling is fine here: it observes
// another process from a test, and the limit is a bound, not a target.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Logf("gave up waiting %v for %s", limit, what)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func equalStrings(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// fakeMmdebstrap stands in for mmdebstrap: it logs its call, and unless told
// to fail, fills the target (second to last argument) with what
// checkRootfs looks for.
const fakeMmdebstrap = `#!/bin/sh
echo "$@" >> "$FAKE_LOG"
for a; do target=$prev; prev=$a; done
if [ -n "$FAKE_FAIL" ]; then echo "E: boom, the fake failed"; exit 1; fi
sleep 0.3
mkdir -p "$target/lib/systemd" "$target/usr/bin" "$target/usr/share/perl/5.36/JSON" "$target/usr/lib/python3.11/json"
touch "$target/lib/systemd/systemd" "$target/usr/share/perl/5.36/JSON/PP.pm" "$target/usr/lib/python3.11/json/__init__.py"
for f in busctl dbus-daemon systemd-run perl python3 rpm pgrep setpriv; do touch "$target/usr/bin/$f"; done
`

// TestBuildRootfsOnce checks the cache's promises with a fake mmdebstrap:
// parallel builders build once, a crashed build's directory is swept, and a
// failed build leaves nothing that looks done.
func TestBuildRootfsOnce(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "unshare")
	before := hostState()
	bin, cache := t.TempDir(), t.TempDir()
	logPath := filepath.Join(t.TempDir(), "calls")
	if err := os.WriteFile(filepath.Join(bin, "mmdebstrap"), []byte(fakeMmdebstrap), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("FAKE_LOG", logPath)
	t.Setenv("FAKE_FAIL", "")

	rc := newRecipe("http://fake.invalid/debian")
	crashed := filepath.Join(cache, ".build-"+rc.key()+"-crashed")
	if err := os.MkdirAll(filepath.Join(crashed, "rootfs/etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	paths, errs := make([]string, 4), make([]error, 4)
	var wg sync.WaitGroup
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = buildRootfs(t.Context(), cache, rc) })
	}
	wg.Wait()
	want := filepath.Join(cache, rc.key(), cacheRootfs)
	for i := range paths {
		if errs[i] != nil || paths[i] != want {
			t.Errorf("builder %d: %q, %v; want %q", i, paths[i], errs[i], want)
		}
	}
	if b, _ := os.ReadFile(logPath); strings.Count(string(b), "\n") != 1 {
		t.Errorf("mmdebstrap ran %d times, want once:\n%s", strings.Count(string(b), "\n"), b)
	}
	if _, err := os.Stat(crashed); err == nil {
		t.Error("the crashed build's directory is still there")
	}
	if b, err := os.ReadFile(filepath.Join(cache, rc.key(), cacheRecipe)); err != nil || string(b) != rc.text() {
		t.Errorf("recipe.txt = %q, %v", b, err)
	}

	t.Setenv("FAKE_FAIL", "1")
	bad := newRecipe("http://unreachable.invalid/debian")
	_, err := buildRootfs(t.Context(), cache, bad)
	if err == nil || !strings.Contains(err.Error(), "boom, the fake failed") || !strings.Contains(err.Error(), EnvMirror) {
		t.Errorf("failed build: %v; want the log's tail and a hint", err)
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "*"+bad.key()+"*")); len(m) != 1 || !strings.HasSuffix(m[0], ".lock") {
		t.Errorf("a failed build left %q; want only its lock file", m)
	}
	checkNothingLeft(t, before)
}
