package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

func TestShowStuckAndUsage(t *testing.T) {
	now := time.Now()
	peak := uint64(3 << 20)
	g := ipc.Group{
		ID: "g", Kind: ipc.KindSubtree, State: ipc.StateKilling, Stuck: true, StuckSince: now.Add(-90 * time.Second), Created: now,
		Usage: &ipc.Usage{
			CPU:         &ipc.CPUUsage{UsageUsec: 1_500_000, UserUsec: 1_000_000, SystemUsec: 500_000},
			Memory:      &ipc.MemoryUsage{CurrentBytes: 1 << 20, PeakBytes: &peak},
			Unavailable: map[string]string{"pids": "the pids controller is bound to cgroup v1", "io": "not enabled"},
		},
	}
	var b bytes.Buffer
	writeGroupDetails(&b, &g, nil, now)
	for _, want := range []string{
		"killing (stuck)", "stuck since:", "1m30s ago", "usage:", "so far", "cpu:", "1.5s (user 1s, system 500ms)",
		"memory:", "1.0 MiB (peak 3.0 MiB)", "pids:", "- (the pids controller is bound to cgroup v1)", "- (not enabled)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	writeGroupTable(&b, []ipc.Group{g}, now)
	if !strings.Contains(b.String(), "killing (stuck)") {
		t.Errorf("ls:\n%s", b.String())
	}
	b.Reset()
	g.Usage = &ipc.Usage{Unavailable: map[string]string{"cgroup": "a watch group has no cgroup"}}
	g.Stuck = false
	writeGroupDetails(&b, &g, nil, now)
	if !strings.Contains(b.String(), "usage:") || !strings.Contains(b.String(), "- (a watch group has no cgroup)") || strings.Contains(b.String(), "stuck") {
		t.Errorf("show without a cgroup:\n%s", b.String())
	}
}

func TestStatusFigures(t *testing.T) {
	var b bytes.Buffer
	writeStatus(&b, &ipc.Status{
		Version: "v1", Pid: 9, Backend: "cgroupfs",
		Groups: map[string]int{"active": 2, "killing": 1, "dead": 1, "released": 0, "stuck": 1},
		Metrics: &ipc.Metrics{
			Kills:           map[string]uint64{"spawner_exited": 3, "request": 1, "parent": 0},
			ProcessesKilled: 12,
			KillDuration: ipc.Histogram{Count: 4, Sum: 0.008, Buckets: []ipc.Bucket{
				{LE: 0.001, Count: 1}, {LE: 0.0025, Count: 3}, {LE: 0.005, Count: 4},
			}},
			Requests: map[string]map[string]uint64{
				"register": {"ok": 10, "permission_denied": 2},
				"unknown":  {"bad_request": 1},
			},
			StuckGroups: 1,
		},
	}, "/run/o.sock")
	for _, want := range []string{
		"groups:", "4 (2 active, 1 dead, 1 killing, 0 released); 1 stuck",
		"kills:", "4 (1 request, 3 spawner_exited)",
		"processes killed:", "12",
		"kill time:", "mean 2ms, p50 ~1.75ms, p99 ~4.9", "(4 kills, cause to empty)",
		"requests:", "13 (10 ok; refused: 1 bad_request, 2 permission_denied)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}

func TestQuantile(t *testing.T) {
	h := ipc.Histogram{Count: 10, Buckets: []ipc.Bucket{{LE: 1, Count: 0}, {LE: 2, Count: 10}}}
	if got := quantile(h, 0.5); got != "~1.5s" {
		t.Errorf("p50 = %s", got)
	}
	h = ipc.Histogram{Count: 10, Buckets: []ipc.Bucket{{LE: 1, Count: 5}}}
	if got := quantile(h, 0.99); got != "> 1s" {
		t.Errorf("p99 beyond the last bucket = %s", got)
	}
}

func TestStuckEventLine(t *testing.T) {
	var b bytes.Buffer
	ms := 10500.0
	writeEvent(&b, ipc.Event{Event: ipc.EventStuck, Group: "g", Time: time.Now(), Members: []int{41, 42}, Millis: &ms})
	if !strings.Contains(b.String(), "stuck") || !strings.Contains(b.String(), "pids=41,42") {
		t.Errorf("stuck event: %q", b.String())
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := size(in); got != want {
			t.Errorf("size(%d) = %q, want %q", in, got, want)
		}
	}
}
