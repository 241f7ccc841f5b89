package nspawn

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTimeout is wrapped by the error of a run that Options.Timeout ended.
// Such an error also matches context.DeadlineExceeded.
var ErrTimeout = errors.New("run timed out")

// ErrUnsupported is returned where systemd-nspawn cannot run (not Linux).
var ErrUnsupported = errors.New("nspawn: needs Linux")

// Error is returned when a run did not complete: the container could not
// boot, the script never reported its status, or the run timed out or was
// cancelled. Its message carries the last console and journal lines, so a
// test that prints it shows what went wrong inside.
type Error struct {
	Machine string // the container's machine name (and hostname)
	Err     error  // what happened; may wrap ErrTimeout or a context error
	Console string // last lines of the container's console, if any
	Journal string // last lines of the container's journal, if it could be read
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nspawn %s: %v", e.Machine, e.Err)
	if e.Console != "" {
		b.WriteString("\n--- container console, last lines ---\n")
		b.WriteString(strings.TrimRight(e.Console, "\n"))
	}
	if e.Journal != "" {
		b.WriteString("\n--- container journal, last lines ---\n")
		b.WriteString(strings.TrimRight(e.Journal, "\n"))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
