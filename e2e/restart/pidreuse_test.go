package restart

import (
	"errors"
	"testing"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// reusePid starts a `sleep 1000` that gets pid, which must be free
// (harness.ReusePid). It returns nil when the machine forks too fast for
// the test to get the pid (it then says so); the newcomer is killed by the
// cleanup.
func reusePid(t *testing.T, pid int) *proctree.Process {
	t.Helper()
	p, err := harness.ReusePid(t, pid, 300)
	if errors.Is(err, harness.ErrNotReused) {
		t.Logf("note: %v", err)
		return nil
	}
	if err != nil {
		testutil.Skipf(t, "cannot steer pids through /proc/sys/kernel/ns_last_pid: %v", err)
	}
	return p
}
