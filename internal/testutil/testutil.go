// Package testutil holds small helpers shared by orphand's tests: skipping a
// test whose prerequisite is missing (root, a command, a kernel feature) with
// the reason — or failing it instead when ORPHAND_TEST_STRICT=1, as CI sets, so
// that a missing install step can never turn into a silently green run.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// StrictEnv is the environment variable that turns skips into failures.
const StrictEnv = "ORPHAND_TEST_STRICT"

// Strict reports whether missing prerequisites must fail tests rather than
// skip them.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Skipf skips the test with the reason, or fails it in strict mode.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("prerequisite missing ("+StrictEnv+"=1, so this fails instead of skipping): "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips (or, in strict mode, fails) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skipf(t, "needs root (euid is %d); CI runs the suite as root", os.Geteuid())
	}
}

// RequireCommand skips (or fails in strict mode) unless name is on $PATH, and
// returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skipf(t, "needs %q on $PATH (make deps installs it): %v", name, err)
	}
	return p
}
