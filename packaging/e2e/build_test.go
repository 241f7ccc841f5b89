package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/internal/testutil"
)

// repoRoot is the repository, seen from this package's directory (go test
// runs a package's tests there).
const repoRoot = "../.."

// upgradeSuffix makes the version of the second build, which the upgrade
// tests install over the first: appended to any valid version, it sorts
// after it for dpkg and rpm alike.
const upgradeSuffix = "+upgrade"

// built is what packaging/build.sh made for this test process: the
// checkout's packages and a second build of them with a higher version.
type built struct {
	version, upgrade string // package versions
	deb, rpm         string // paths of the checkout's packages
	debUp, rpmUp     string // paths of the upgrade's packages
}

var (
	buildOnce sync.Once
	buildRes  built
	buildErr  error
	buildDir  string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{buildDir, binDir} {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// packages builds the packages once per test process, on the host.
func packages(t testing.TB) built {
	t.Helper()
	if nspawn.Inside() {
		t.Fatal("packages are built on the host, not in the container")
	}
	gotool := goTool(t)
	testutil.RequireCommand(t, "git")
	buildOnce.Do(func() { buildRes, buildErr = buildPackages(gotool) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildRes
}

// goTool finds the go command, as internal/nspawn does: on $PATH, else in
// $GOROOT (go test sets it).
func goTool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testutil.Skipf(t, "needs the go tool (on $PATH or in $GOROOT) to build the packages")
	return ""
}

func buildPackages(gotool string) (built, error) {
	dir, err := os.MkdirTemp("", "orphand-packages-")
	if err != nil {
		return built{}, err
	}
	buildDir = dir
	out, err := command(repoRoot, "sh", "packaging/version.sh")
	if err != nil {
		return built{}, err
	}
	b := built{version: strings.TrimSpace(out)}
	b.upgrade = b.version + upgradeSuffix
	for _, v := range []struct {
		version  string
		deb, rpm *string
	}{{b.version, &b.deb, &b.rpm}, {b.upgrade, &b.debUp, &b.rpmUp}} {
		out, err := command(repoRoot, "env", "GO="+gotool, "sh", "packaging/build.sh", "-o", dir, "-v", v.version)
		if err != nil {
			return built{}, err
		}
		for _, p := range strings.Fields(out) {
			switch filepath.Ext(p) {
			case ".deb":
				*v.deb = p
			case ".rpm":
				*v.rpm = p
			}
		}
		if *v.deb == "" || *v.rpm == "" {
			return built{}, fmt.Errorf("build.sh -v %s printed no .deb and .rpm paths: %q", v.version, out)
		}
	}
	return b, nil
}

// command runs name in dir and returns its standard output; the error
// carries the standard error.
func command(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// mustRun runs a command on the host and returns its standard output.
func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := command("", name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
