package auto_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/auto"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
)

func TestMain(m *testing.M) { cgtest.Main(m, "orphand-test-auto") }

func TestOpen(t *testing.T) {
	testutil.RequireRoot(t)
	root := cgtest.Dir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))

	want := auto.Cgroupfs
	if auto.SystemdBooted() {
		want = auto.Systemd
	}
	b, err := auto.Open(ctx, auto.Config{CgroupRoot: root, Logger: log})
	if err != nil {
		t.Fatalf("Open(auto): %v", err)
	}
	defer b.Close()
	if b.Name() != want || b.Features().Backend != want {
		t.Errorf("auto chose %q (%+v), want %q", b.Name(), b.Features(), want)
	}
	if !strings.Contains(logs.String(), "cgroup backend") {
		t.Errorf("the choice was not logged: %q", logs.String())
	}

	fs, err := auto.Open(ctx, auto.Config{Backend: auto.Cgroupfs, CgroupRoot: root, NoCgroupKill: true})
	if err != nil {
		t.Fatalf("Open(cgroupfs): %v", err)
	}
	defer fs.Close()
	g, err := fs.Create(ctx, cgroup.Spec{ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := auto.Open(ctx, auto.Config{Backend: "nope"}); err == nil || !strings.Contains(err.Error(), "cgroupfs") {
		t.Errorf("unknown backend: %v", err)
	}
	if p, err := auto.Open(ctx, auto.Config{Backend: auto.Proc}); err != nil || p.Name() != auto.Proc {
		t.Errorf("proc: %v", err)
	} else {
		p.Close()
	}
	if !auto.SystemdBooted() {
		_, err := auto.Open(ctx, auto.Config{Backend: auto.Systemd})
		if !errors.Is(err, cgroup.ErrUnavailable) || !strings.Contains(err.Error(), "PID 1") {
			t.Errorf("systemd without systemd: %v", err)
		}
	}
}
