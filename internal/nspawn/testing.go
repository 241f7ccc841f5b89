package nspawn

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// rootfsBuildTimeout bounds Require's first-use build of the rootfs.
const rootfsBuildTimeout = 20 * time.Minute

// Inside reports whether this process runs inside a container booted by
// this package (EnvInside is "1").
func Inside() bool { return os.Getenv(EnvInside) == "1" }

// Require makes sure a container can be booted: root, systemd-nspawn,
// mmdebstrap, unshare, a cgroup2 mount and the rootfs, which it builds on
// first use. Whatever is missing skips the test with the reason (fails it
// when ORPHAND_TEST_STRICT=1). Inside a container it skips: nesting is not
// supported.
func Require(t testing.TB) {
	t.Helper()
	if Inside() {
		t.Skip("already inside an nspawn container (" + EnvInside + "=1); nesting is not supported")
	}
	testutil.RequireRoot(t)
	for _, tool := range []string{"systemd-nspawn", "mmdebstrap", "unshare"} {
		testutil.RequireCommand(t, tool)
	}
	if err := preflight(); err != nil {
		testutil.Skipf(t, "cannot run systemd-nspawn here: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), rootfsBuildTimeout)
	defer cancel()
	if _, err := Rootfs(ctx); err != nil {
		testutil.Skipf(t, "cannot build the container's root filesystem: %v", err)
	}
}

// RunGoTest runs Go tests of package pkg inside a container: it builds the
// package's test binary on the host (CGO_ENABLED=0 go test -c; pkg is
// resolved like go test does, from the working directory: "." is the
// calling test's own package), boots, runs the tests matching the -test.run
// pattern run with -test.v, streams their output to t, and fails t if they
// fail, if the pattern matched no test, or if the run does.
//
// opts.Script is replaced; opts.Share defaults to a t.TempDir (the binary is
// written there) and opts.Output to t.Output(). The package's source
// directory is bound read-only at the same path and is the working
// directory, so testdata/ works as on the host. ORPHAND_TEST_STRICT is
// passed on, and -test.short when the host run has it; -test.timeout is set
// 30 s short of opts.Timeout, so a hung test dumps its goroutines.
func RunGoTest(t testing.TB, pkg, run string, opts Options) {
	t.Helper()
	Require(t)
	if opts.Share == "" {
		opts.Share = t.TempDir()
	}
	if opts.Output == nil {
		opts.Output = t.Output()
	}
	dir, bin := buildGoTest(t, pkg, opts.Share)
	opts.Binds = append(opts.Binds, Bind{Host: dir, Guest: dir, ReadOnly: true})
	flags := "-test.v -test.count=1"
	if testing.Short() {
		flags += " -test.short"
	}
	// A hung test then panics with every goroutine's stack before the
	// run's own timeout kills the container without a word.
	if d := opts.timeout() - 30*time.Second; d >= 30*time.Second {
		flags += " -test.timeout=" + d.String()
	}
	// Run from the container's root, not the share: a host /tmp mounted
	// noexec would otherwise make the binary impossible to execute.
	opts.Script = fmt.Sprintf("install -m 0755 %[1]s/%[2]s /usr/local/bin/%[2]s && cd %[3]s && exec /usr/local/bin/%[2]s %[4]s -test.run %[5]s",
		GuestShare, shellQuote(bin), shellQuote(dir), flags, shellQuote(run))
	env := map[string]string{}
	for k, v := range opts.Env {
		env[k] = v
	}
	if v, ok := os.LookupEnv(testutil.StrictEnv); ok {
		env[testutil.StrictEnv] = v
	}
	opts.Env = env
	watch := &noTestsWatch{w: opts.Output}
	opts.Output = watch
	code, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("%s -test.run %q in systemd-nspawn: %v", pkg, run, err)
	}
	if code != 0 {
		t.Fatalf("%s -test.run %q failed inside systemd-nspawn: exit status %d (output above)", pkg, run, code)
	}
	if watch.noTests {
		t.Fatalf("%s -test.run %q ran no test inside systemd-nspawn: the pattern matches nothing", pkg, run)
	}
}

// noTestsWatch passes output on and notes the testing package's warning
// that -test.run matched nothing, which still exits 0.
type noTestsWatch struct {
	w       io.Writer
	line    []byte // the current, incomplete line
	noTests bool
}

func (n *noTestsWatch) Write(p []byte) (int, error) {
	for _, c := range p {
		if c != '\n' {
			if len(n.line) < 256 {
				n.line = append(n.line, c)
			}
			continue
		}
		if strings.HasPrefix(string(n.line), "testing: warning: no tests to run") {
			n.noTests = true
		}
		n.line = n.line[:0]
	}
	return n.w.Write(p)
}

// RunSelf runs the calling test again inside a container and reports
// whether the caller is the inside run. On the host it returns false once
// the inside run passed (or ends the test, like RunGoTest); inside it
// returns true at once, and the rest of the test runs with systemd as PID 1:
//
//	func TestScope(t *testing.T) {
//		if !nspawn.RunSelf(t, nspawn.Options{}) {
//			return // the test ran in the container and passed
//		}
//		// here systemd is PID 1 ...
//	}
func RunSelf(t testing.TB, opts Options) (inside bool) {
	t.Helper()
	if Inside() {
		return true
	}
	RunGoTest(t, ".", testPattern(t.Name()), opts)
	return false
}

// testPattern is a -test.run pattern matching exactly the test (or subtest)
// with this name: -test.run matches each slash-separated level separately.
func testPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// buildGoTest builds pkg's static test binary into share and returns the
// package's source directory and the binary's file name.
func buildGoTest(t testing.TB, pkg, share string) (dir, bin string) {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil && os.Getenv("GOROOT") != "" {
		gotool, err = filepath.Join(os.Getenv("GOROOT"), "bin", "go"), nil
	}
	if err != nil {
		testutil.Skipf(t, "needs the go tool on $PATH to build the test binary: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), gotool, "list", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	dir = strings.TrimSpace(string(out))
	bin = filepath.Base(dir) + ".test"
	cmd := exec.CommandContext(t.Context(), gotool, "test", "-c", "-o", filepath.Join(share, bin), pkg)
	// Static, because the container has other libraries than the host;
	// without cgo there is no -race, which is fine inside.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the test binary of %s: %v\n%s", pkg, err, out)
	}
	return dir, bin
}
