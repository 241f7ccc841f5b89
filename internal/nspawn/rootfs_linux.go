package nspawn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var (
	rootfsMu   sync.Mutex // guards rootfsPath; held during a build, so one per process
	rootfsPath string
)

// Rootfs returns the root filesystem the container boots, building it on
// first use (27 to 65 s measured, mirror and load permitting;
// BenchmarkRootfsCold, docs/testing.md).
// Builds are shared: the result is cached under $ORPHAND_NSPAWN_CACHE (or
// DefaultCacheDir) in a directory named by a hash of the recipe (Suite,
// Packages, mirror, architecture), and an flock makes parallel test
// processes build it once. A build is renamed into place only when complete.
func Rootfs(ctx context.Context) (string, error) {
	rootfsMu.Lock()
	defer rootfsMu.Unlock()
	if rootfsPath != "" && complete(filepath.Dir(rootfsPath)) {
		return rootfsPath, nil // unless someone emptied the cache meanwhile
	}
	for _, tool := range []string{"mmdebstrap", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("nspawn: %s not found (apt-get install mmdebstrap util-linux, or make deps): %w", tool, err)
		}
	}
	p, err := buildRootfs(ctx, cacheDir(), newRecipe(hostMirror("/etc/apt")))
	if err != nil {
		return "", fmt.Errorf("nspawn: root filesystem: %w", err)
	}
	rootfsPath = p
	return p, nil
}

// Layout of one recipe's cache directory.
const (
	cacheRootfs = "rootfs"
	cacheRecipe = "recipe.txt"
	cacheLog    = "build.log"
)

// buildRootfs returns cache/KEY/rootfs, building it first if needed.
func buildRootfs(ctx context.Context, cache string, rc recipe) (string, error) {
	key := rc.key()
	final := filepath.Join(cache, key)
	if complete(final) {
		return filepath.Join(final, cacheRootfs), nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(final) { // another process built it while we waited
		return filepath.Join(final, cacheRootfs), nil
	}
	// Under the lock, any build directory of this key is from a build that
	// died: remove it.
	stale, _ := filepath.Glob(filepath.Join(cache, ".build-"+key+"-*"))
	for _, s := range stale {
		_ = os.RemoveAll(s)
	}
	tmp, err := os.MkdirTemp(cache, ".build-"+key+"-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a failed build's leftovers; nothing after the rename
	if err := os.WriteFile(filepath.Join(tmp, cacheRecipe), []byte(rc.text()), 0o644); err != nil {
		return "", err
	}
	if err := mmdebstrap(ctx, rc, tmp); err != nil {
		return "", err
	}
	if err := checkRootfs(filepath.Join(tmp, cacheRootfs)); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return filepath.Join(final, cacheRootfs), nil
}

// complete reports whether dir holds a finished build. The rename of the
// build directory is the commit point, so existence is enough; the recipe
// file guards against a directory made by hand.
func complete(dir string) bool {
	_, err1 := os.Stat(filepath.Join(dir, cacheRootfs))
	_, err2 := os.Stat(filepath.Join(dir, cacheRecipe))
	return err1 == nil && err2 == nil
}

// mmdebstrap bootstraps into dir/rootfs, logging to dir/build.log. It runs
// in a private mount namespace (mounts it makes in the chroot vanish with
// it, even if it is killed) and in a cgroup of its own (so a cancelled
// build ends entirely).
func mmdebstrap(ctx context.Context, rc recipe, dir string) error {
	logf, err := os.Create(filepath.Join(dir, cacheLog))
	if err != nil {
		return err
	}
	defer logf.Close()
	id, err := newRunID()
	if err != nil {
		return err
	}
	g, err := newProcGroup(id.group(), false, "")
	if err != nil {
		return err
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "mmdebstrap"},
		rc.mmdebstrapArgs(filepath.Join(dir, cacheRootfs))...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	began := time.Now()
	waitErr, err := runInGroup(ctx, cmd, g, time.Second, nil)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil && waitErr != nil {
		err = waitErr
	}
	if err != nil {
		b, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("mmdebstrap %s from %s failed after %v: %w (is the mirror reachable? set %s to another one)\n--- %s, last lines ---\n%s",
			rc.Suite, rc.Mirror, time.Since(began).Round(time.Second), err, EnvMirror, logf.Name(), lastLines(b, 30))
	}
	return nil
}

// checkRootfs verifies that the packages callers rely on are really there.
func checkRootfs(root string) error {
	var errs []error
	for _, p := range []string{
		"lib/systemd/systemd", "usr/bin/busctl", "usr/bin/dbus-daemon", "usr/bin/systemd-run",
		"usr/bin/perl", "usr/bin/python3", "usr/bin/rpm", "usr/bin/pgrep", "usr/bin/setpriv",
	} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			errs = append(errs, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(root, "usr/share/perl/*/JSON/PP.pm")); len(m) == 0 {
		errs = append(errs, errors.New("perl module JSON::PP is missing"))
	}
	if m, _ := filepath.Glob(filepath.Join(root, "usr/lib/python3*/json/__init__.py")); len(m) == 0 {
		errs = append(errs, errors.New("python3 module json is missing"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("built rootfs %s is incomplete: %w", root, errors.Join(errs...))
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting until ctx ends; the
// lock dies with the process, so a crashed builder never blocks the next.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, &fs.PathError{Op: "flock", Path: path, Err: err}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another process to build the rootfs (%s): %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
