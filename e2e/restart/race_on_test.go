//go:build race

package restart

// raceEnabled: this test binary has the race detector, so the agent under
// test on the host is built with it too.
const raceEnabled = true
