package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/internal/testutil"
)

// suiteEnv turns on TestSandboxedAgentE2ESuite; `make e2e-package` sets
// it. `go test ./...` leaves it off: package e2e runs the same suite there
// against its own, unsandboxed units.
const suiteEnv = "ORPHAND_PKG_E2E_SUITE"

// e2eEnvBin is package e2e's variable naming a directory with its binaries
// already built (the container has no Go toolchain).
const e2eEnvBin = "ORPHAND_E2E_BIN"

// TestSandboxedAgentE2ESuite runs the agent's own end-to-end suite under
// systemd (package e2e's TestSystemd: every scenario, scopes in the
// caller's slice, stopping the caller's unit) against the agent the .deb
// installs, in its sandbox. The sandbox is meant to be the strictest under
// which every one of those tests passes; this is where that is checked.
func TestSandboxedAgentE2ESuite(t *testing.T) {
	if nspawn.Inside() {
		t.Skip("host-side driver: it runs package e2e's test binary in the container")
	}
	if os.Getenv(suiteEnv) != "1" {
		t.Skipf("set %s=1 to run the agent's e2e suite against the packaged agent (make e2e-package does)", suiteEnv)
	}
	nspawn.Require(t)
	b := packages(t)
	gotool := goTool(t)
	share := t.TempDir()
	bin := filepath.Join(share, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, build := range [][]string{
		{"build", "-trimpath", "-o", bin + "/", "./cmd/orphand", "./cmd/orphanctl", "./examples/goclient"},
		{"test", "-c", "-o", filepath.Join(share, "e2e.test"), "./e2e"},
	} {
		if _, err := command(repoRoot, "env", append([]string{"CGO_ENABLED=0", gotool}, build...)...); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"client.pl", "client.py"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, f), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(b.deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "orphand.deb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	e2eDir, err := filepath.Abs(filepath.Join(repoRoot, "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{e2eEnvBin: nspawn.GuestShare + "/bin"}
	if v, ok := os.LookupEnv(testutil.StrictEnv); ok {
		env[testutil.StrictEnv] = v
	}
	timeout := 12 * time.Minute
	// The suite scrapes the agent's metrics on the Unix socket its own test
	// unit names (TestSystemd/Metrics): the packaged agent is told the same
	// before the first connection starts it, inside its sandbox.
	script := fmt.Sprintf(`set -e
dpkg -i %[1]s/orphand.deb
sed -i '1i metrics_address = "/run/orphand/metrics.sock"' /etc/orphand/orphand.toml
install -m 0755 %[1]s/e2e.test /usr/local/bin/orphand-e2e.test
cd %[2]s
exec /usr/local/bin/orphand-e2e.test -test.v -test.count=1 -test.timeout=%[3]s -test.run '^TestSystemd$'`,
		nspawn.GuestShare, e2eDir, timeout-time.Minute)
	code, err := nspawn.Run(t.Context(), nspawn.Options{
		Share:   share,
		Binds:   []nspawn.Bind{{Host: e2eDir, Guest: e2eDir, ReadOnly: true}},
		Script:  script,
		Env:     env,
		Output:  t.Output(),
		Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("package e2e's TestSystemd failed against the packaged, sandboxed agent: exit status %d (output above)", code)
	}
}
