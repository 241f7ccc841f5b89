package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// BenchmarkRegisterRecords measures what the records cost a registration:
// the same agent (cgroupfs backend), side by side, with a Durable (two
// journal commits before the answer: the intent, then the active record;
// the state directory in the test's temporary directory) and without
// (memory only). ns/op is one register request, answered; the process it
// moves is started, and groups killed every 64, outside the timer.
func BenchmarkRegisterRecords(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := "memory"
		if durable {
			name = "records"
		}
		b.Run(name, func(b *testing.B) {
			sock := benchAgent(b, durable)
			c := dial(b, sock)
			var groups []string
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				if len(groups) == 64 || i == b.N-1 { // processes and cgroups stay few
					for _, id := range groups {
						c.ok(ipc.Request{Op: ipc.OpKill, Group: id})
					}
					groups = groups[:0]
				}
				cmd := exec.Command("sleep", "1000")
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				go func() { _ = cmd.Wait() }() // reaped once its group is killed
				b.StartTimer()
				groups = append(groups, c.ok(ipc.Request{Op: ipc.OpRegister, Pid: cmd.Process.Pid}).Group.ID)
			}
			b.StopTimer()
		})
	}
}

// benchAgent runs an agent on a cgroupfs root of its own until the
// benchmark ends; the cleanup kills whatever the root holds.
func benchAgent(b *testing.B, durable bool) string {
	b.Helper()
	testutil.RequireRoot(b)
	m, err := cgroup.Discover()
	if err != nil || m.Path == "" {
		testutil.Skipf(b, "no cgroup2 mount: %v", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	rel := "/orphand-test-agent-bench-" + hex.EncodeToString(rnd[:])
	dir := filepath.Join(m.Path, rel)
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { removeTree(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	back, err := cgroupfs.Open(ctx, cgroupfs.Config{Root: rel})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { back.Close() })
	var opts []Option
	if durable {
		d, err := NewDurable(DurableConfig{Dir: filepath.Join(b.TempDir(), "state")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		opts = append(opts, WithDurable(d))
	}
	sock := filepath.Join(b.TempDir(), "orphand.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ready := make(chan struct{})
	cfg := testConfig()
	cfg.OnReady = func() { close(ready) }
	a, err := New(cfg, back, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx, ln) }()
	b.Cleanup(func() { stop(); <-done })
	<-ready
	return sock
}

// removeTree kills what the cgroup at dir holds and removes it, deepest
// first.
func removeTree(dir string) {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.events")); strings.Contains(string(b), "populated 0") {
			break
		}
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}
