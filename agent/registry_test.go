package agent

import (
	"errors"
	"testing"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// Concurrent registrations of one uid reserve their targets before they
// open them, so they cannot all pass the quota against the same count.
func TestTargetReservation(t *testing.T) {
	a := &Agent{cfg: testConfig()}
	a.cfg.Limits.TargetsPerUID = 1000
	a.cfg.Limits.TargetsPerWatch = 1000
	alice := policy.Caller{UID: 1000}
	a.mu.Lock()
	release, err := a.reserveGroupLocked(alice, 600)
	if err != nil {
		a.mu.Unlock()
		t.Fatal(err)
	}
	_, err = a.reserveGroupLocked(alice, 600)
	a.mu.Unlock()
	var le *policy.LimitError
	if !errors.As(err, &le) || le.Limit != ipc.LimitTargetsPerUID {
		t.Fatalf("second reservation: %v, want %s", err, ipc.LimitTargetsPerUID)
	}
	release()
	a.mu.Lock()
	release, err = a.reserveGroupLocked(alice, 600)
	a.mu.Unlock()
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	release()
	if a.live.pendingTargets != 0 || len(a.live.pendingTargetsByUID) != 0 {
		t.Fatalf("reservations left: %+v", a.live)
	}
}
