package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// The test binary is the example's Go worker too: run starts
// os.Executable(), which here is this binary.
func TestMain(m *testing.M) {
	if name := os.Getenv(workerEnv); name != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := work(ctx, name)
		cancel()
		if err != nil {
			os.Stderr.WriteString("worker: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestExample runs the example end to end: two Go workers and a Perl one,
// data both ways, sums checked by run itself.
func TestExample(t *testing.T) {
	testutil.RequireCommand(t, "perl")
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	var errs testutil.SyncBuffer // the workers' stderr, written from several goroutines
	if err := run(ctx, &out, &errs); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errs.String())
	}
	t.Logf("output:\n%s", out.String())
	for _, w := range []string{"go-worker-1  go", "go-worker-2  go", "perl-worker  perl"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("no report from %q in:\n%s", w, out.String())
		}
	}
}
