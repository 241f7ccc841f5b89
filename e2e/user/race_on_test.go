//go:build race

package user

// raceEnabled: this test binary has the race detector, so the agent is
// built with it too.
const raceEnabled = true
