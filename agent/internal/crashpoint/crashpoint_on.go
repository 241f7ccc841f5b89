//go:build orphand_crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// FileEnv names, in a test build (tag orphand_crashpoints), a file
// holding the name of a crash point, optionally followed by a space and a
// group's id: then only that group's pass crashes (another group's kill
// may reach kill.emptied first). When the agent reaches the point it
// removes the file — so that the agent started next does not crash there
// too — writes one line to stderr and SIGKILLs itself. A file rather than a
// variable: under systemd the test arms a crash point in an agent that is
// already running, and the restarted one inherits the same environment.
// Release builds have no crash points at all: nothing can make them kill
// themselves.
const FileEnv = "ORPHAND_CRASHPOINT_FILE"

var crashFile = os.Getenv(FileEnv)

// Reach marks the moment name in the life of the group with id group: if
// the file FileEnv names holds name (and, if it names one, group), the
// agent SIGKILLs itself here.
func Reach(name, group string) {
	if crashFile == "" {
		return
	}
	b, err := os.ReadFile(crashFile)
	if err != nil {
		return
	}
	point, only, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	if point != name || (only != "" && only != group) {
		return
	}
	if err := os.Remove(crashFile); err != nil {
		return // another goroutine got here first
	}
	fmt.Fprintf(os.Stderr, "orphand: crash point %s reached: SIGKILL\n", name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// Enabled reports whether this build has crash points.
const Enabled = true
