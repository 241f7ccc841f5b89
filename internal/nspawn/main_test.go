package nspawn

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a run starts must have ended when Run returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
