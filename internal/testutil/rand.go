package testutil

import (
	"crypto/rand"
	"encoding/hex"
)

// RandHex returns n random bytes in hex: a suffix that keeps the names of
// test cgroups, directories and machines from clashing between runs.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
