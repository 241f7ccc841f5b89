//go:build race

package security

// raceEnabled: this test binary has the race detector, so the agent under
// attack is built with it too (a race under hostile load is a finding).
const raceEnabled = true
