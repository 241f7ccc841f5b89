package systemd_test

import (
	"context"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup/auto"
	"github.com/orphand/orphand/internal/nspawn"
)

// TestScopeAuto: under systemd, auto picks the systemd backend.
func TestScopeAuto(t *testing.T) {
	if !nspawn.Inside() {
		t.Skip("runs inside the systemd container that TestSystemdBackend boots")
	}
	if !auto.SystemdBooted() {
		t.Fatal("inside the container but /run/systemd/system is missing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := auto.Open(ctx, auto.Config{})
	if err != nil {
		t.Fatalf("auto.Open: %v", err)
	}
	defer b.Close()
	if b.Name() != auto.Systemd {
		t.Errorf("auto chose %s under systemd", b.Name())
	}
}
