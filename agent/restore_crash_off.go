//go:build !orphand_crashpoints

package agent

// crashPoint marks a moment where a test build (tag orphand_crashpoints)
// can make the agent SIGKILL itself, to test restarts at that exact moment.
// In every other build it does nothing and costs nothing.
func crashPoint(string) {}

// crashPoints reports whether this build has crash points.
const crashPoints = false
