package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

func TestWriteTree(t *testing.T) {
	g := &ipc.Group{
		ID: "0123456789ab", Name: "build", Kind: ipc.KindSubtree, State: ipc.StateActive,
		Cgroup: "/orphand/0123456789ab", Spawner: ipc.Process{Pid: 100},
	}
	procs := []proc{
		{Pid: 100, PPid: 50, Cmd: "bash build.sh"},
		{Pid: 101, PPid: 100, Cmd: "make -j2"},
		{Pid: 105, PPid: 101, Cmd: "cc a.c"},
		{Pid: 103, PPid: 101, Cmd: "cc b.c"},
		{Pid: 102, PPid: 100, Cmd: "sleep 10"},
		{Pid: 200, PPid: 1, Cmd: "daemon"}, // double-forked: its parent is gone
		{Pid: 150, Gone: true},
	}
	var b bytes.Buffer
	writeTree(&b, g, procs)
	want := `0123456789ab (build): subtree group, active, /orphand/0123456789ab
├─100 bash build.sh  ← spawner
│ ├─101 make -j2
│ │ ├─103 cc b.c
│ │ └─105 cc a.c
│ └─102 sleep 10
├─150 (exited)
└─200 daemon
`
	if b.String() != want {
		t.Errorf("tree:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	compat := &ipc.Group{
		ID: "cccccccccccc", Kind: ipc.KindWatch, Origin: ipc.OriginCompat, State: ipc.StateActive,
		Cgroup: "/orphand/cccccccccccc", Spawner: ipc.Process{Pid: 100}, Targets: []ipc.Process{{Pid: 101}},
	}
	writeTree(&b, compat, []proc{{Pid: 101, PPid: 100, Cmd: "sh -c x"}, {Pid: 102, PPid: 101, Cmd: "sleep 9"}})
	want = `cccccccccccc: watch/compat group, active, /orphand/cccccccccccc
└─101 sh -c x  ← target
  └─102 sleep 9
`
	if b.String() != want {
		t.Errorf("compat tree:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	writeTree(&b, &ipc.Group{ID: "x", Kind: ipc.KindWatch, State: ipc.StateDead}, nil)
	if !strings.Contains(b.String(), "no live members") {
		t.Errorf("empty tree: %q", b.String())
	}
}

func TestReadProcSelf(t *testing.T) {
	p, err := readProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if p.PPid != os.Getppid() || !strings.Contains(p.Cmd, "orphanctl.test") {
		t.Errorf("readProc(self) = %+v", p)
	}
	procs := readProcs([]int{os.Getpid(), 1 << 30})
	if len(procs) != 2 || procs[0].Gone || !procs[1].Gone {
		t.Errorf("readProcs = %+v", procs)
	}
}

func TestWriteGroupTable(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	writeGroupTable(&b, nil, now)
	if b.String() != "no groups\n" {
		t.Errorf("empty table: %q", b.String())
	}
	b.Reset()
	writeGroupTable(&b, []ipc.Group{
		{
			ID: "aaaaaaaaaaaa", Name: "web", Kind: ipc.KindSubtree, State: ipc.StateActive, Spawner: ipc.Process{Pid: 42},
			Members: 3, Created: now.Add(-90 * time.Second), Cgroup: "/orphand/aaaaaaaaaaaa",
		},
		{
			ID: "bbbbbbbbbbbb", Kind: ipc.KindWatch, State: ipc.StateDead, OwnerUID: 1000, Spawner: ipc.Process{Pid: 7},
			Created: now.Add(-3 * time.Hour), Unit: "orphand-bbbbbbbbbbbb.scope",
		},
		{
			ID: "cccccccccccc", Kind: ipc.KindWatch, Origin: ipc.OriginCompat, State: ipc.StateActive, Spawner: ipc.Process{Pid: 8},
			Created: now, Cgroup: "/orphand/cccccccccccc",
		},
	}, now)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table:\n%s", b.String())
	}
	for _, want := range []string{"web", "1m30s", "/orphand/aaaaaaaaaaaa", "3h00m", "orphand-bbbbbbbbbbbb.scope", "1000", "watch/compat"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteGroupDetailsAndStatus(t *testing.T) {
	now := time.Now()
	var b bytes.Buffer
	writeGroupDetails(&b, &ipc.Group{
		ID: "g", Kind: ipc.KindWatch, State: ipc.StateActive, GraceMS: 1500, Signal: "SIGINT",
		Targets: []ipc.Process{{Pid: 8}, {Pid: 9}}, On: ipc.OnDisconnect, Created: now,
	}, []int{8}, now)
	for _, want := range []string{"SIGINT, then SIGKILL after 1.5s", "targets:", "8 9", "connection closes", "members:"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "origin") {
		t.Errorf("show names an origin for a group of the agent's socket:\n%s", b.String())
	}
	b.Reset()
	writeGroupDetails(&b, &ipc.Group{ID: "c", Kind: ipc.KindWatch, Origin: ipc.OriginCompat, State: ipc.StateActive, Created: now}, nil, now)
	for _, want := range []string{"origin:", "compatibility socket"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	writeStatus(&b, &ipc.Status{
		Version: "v1", Pid: 9, Backend: "cgroupfs", Groups: map[string]int{"active": 2, "dead": 1},
		Cgroup: map[string]any{"mount": "/sys/fs/cgroup"}, Uptime: 61,
	}, "/run/o.sock")
	for _, want := range []string{"orphand v1, pid 9, socket /run/o.sock", "system agent", "3 (2 active, 1 dead)", "1m1s", "mount:"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	uid := uint32(1000)
	writeStatus(&b, &ipc.Status{Version: "v1", Pid: 9, Backend: "systemd", Mode: ipc.ModeUser, UID: &uid}, "/run/user/1000/orphand/orphand.sock")
	if !strings.Contains(b.String(), "per-user agent of uid 1000") {
		t.Errorf("a per-user agent's status does not say so:\n%s", b.String())
	}
	b.Reset()
	k, ms := 4, 1.25
	writeEvent(&b, ipc.Event{Event: ipc.EventKilled, Group: "g", Time: now, Killed: &k, Millis: &ms, Reason: "request"})
	if !strings.Contains(b.String(), "killed=4 ms=1.250") || !strings.Contains(b.String(), "reason=request") {
		t.Errorf("event line: %q", b.String())
	}
}
