package nspawn

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestHelperFailsInside fails on purpose, but only inside a container:
// TestRunGoTestReportsFailure runs it there.
func TestHelperFailsInside(t *testing.T) {
	if Inside() {
		t.Error("deliberate failure inside the container")
	}
}

// fatalTB records the first Fatalf instead of failing the real test, and
// ends its goroutine as t.Fatalf would.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// runFatal calls fn with a fatalTB on its own goroutine and returns what
// it failed with ("" if it did not).
func runFatal(t *testing.T, fn func(testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestRunGoTestReportsFailure(t *testing.T) {
	Require(t)
	msg := runFatal(t, func(tb testing.TB) { RunGoTest(tb, ".", "^TestHelperFailsInside$", Options{}) })
	if !strings.Contains(msg, "failed inside systemd-nspawn: exit status 1") {
		t.Errorf("a failing inside test: RunGoTest failed with %q", msg)
	}
	msg = runFatal(t, func(tb testing.TB) { RunGoTest(tb, ".", "^TestNoSuchTest$", Options{}) })
	if !strings.Contains(msg, "the pattern matches nothing") {
		t.Errorf("a pattern matching nothing: RunGoTest failed with %q", msg)
	}
}
