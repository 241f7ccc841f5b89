//go:build race

package compat

// raceEnabled: this test binary has the race detector, so the agent under
// test is built with it too.
const raceEnabled = true
