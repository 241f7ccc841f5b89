package family

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

func init() {
	// hold: say hello, send a value, then stay connected until stdin closes.
	roles["hold"] = func() error {
		c, err := InitChild("")
		if err != nil {
			return err
		}
		defer c.Close()
		if err := Send(c, "pid", os.Getpid()); err != nil {
			return err
		}
		_, err = bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return Push(c, "bye", "done")
	}
	roles["big-sender"] = bigSender
	roles["big-master"] = bigMaster
}

// TestManyChildren runs 200 children connected at once.
func TestManyChildren(t *testing.T) {
	const n = 200
	m := newMaster(t, Options{})
	// Race-built children take ~12 MiB more each; the children here only
	// run the Child side, which other tests cover under the race detector.
	bin := plainBinary(t)
	procs := make([]*proc, n)
	for i := range procs {
		procs[i] = spawnBin(t, bin, m, "hold")
	}
	ctx := testCtx(t)
	// Every child says hello and sends its pid, and none has left yet.
	for data := 0; data < n; {
		p, err := m.ProcessChildData(ctx, BlockUntilData)
		if err != nil {
			t.Fatalf("after %d values: %v", data, err)
		}
		if p != PacketData {
			t.Fatalf("got %v before every child sent its value", p)
		}
		data++
	}
	running := m.RunningChildrenNames()
	if len(running) != n {
		t.Fatalf("%d children running, want %d", len(running), n)
	}
	for cid, name := range running {
		pid, ok, err := Get[int](m, cid, "pid")
		if err != nil || !ok || strconv.Itoa(pid) != name {
			t.Fatalf("child %d (%s) sent pid %d, %v, %v", cid, name, pid, ok, err)
		}
	}
	for _, p := range procs {
		must(t, p.stdin.Close())
	}
	for range n {
		if _, err := m.ProcessChildData(ctx, BlockUntilChild); err != nil {
			t.Fatal(err)
		}
	}
	if f := m.FinishedChildren(); len(f) != n || len(m.RunningChildren()) != 0 {
		t.Fatalf("%d finished and %d running, want %d and 0", len(f), len(m.RunningChildren()), n)
	}
	for cid := range running {
		if v, ok, err := Pop[string](m, cid, "bye"); err != nil || !ok || v != "done" {
			t.Fatalf("child %d: bye = %q, %v, %v", cid, v, ok, err)
		}
	}
	for _, p := range procs {
		p.wait(t)
	}
}

const (
	bigSize   = 256 << 20
	bigEnvDir = "FAMILY_TEST_DIR"
)

// TestLargeValueBoundedMemory sends one 256 MiB value to a master running
// in a process of its own and checks the master's peak RSS (VmHWM) stays
// under the value's size plus 64 MiB: the value is held once, not twice.
func TestLargeValueBoundedMemory(t *testing.T) {
	if raceEnabled {
		// The race detector shadows every byte the kernel writes into the
		// value, several times over: measure a master without it.
		t.Log("race build: measuring a master built without -race")
	}
	bin := plainBinary(t)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=big-master", bigEnvDir+"="+t.TempDir(),
		"GORACE=atexit_sleep_ms=0")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = testWriter{t}
	if err := cmd.Run(); err != nil {
		t.Fatalf("master process: %v\n%s", err, out.String())
	}
	var hwm int64
	if _, err := fmt.Sscanf(strings.TrimSpace(out.String()), "VmHWM %d", &hwm); err != nil {
		t.Fatalf("master printed %q: %v", out.String(), err)
	}
	limit := int64(bigSize + 64<<20)
	t.Logf("master peak RSS %d MiB for a %d MiB value (limit %d MiB)", hwm>>20, bigSize>>20, limit>>20)
	if hwm >= limit {
		t.Fatalf("master peak RSS %d bytes, want < %d (value + 64 MiB)", hwm, limit)
	}
}

// bigMaster is the master process of TestLargeValueBoundedMemory: it
// receives the value, checks it, and prints its VmHWM in bytes.
func bigMaster() error {
	m, err := New(Options{Dir: os.Getenv(bigEnvDir), MaxValueSize: bigSize})
	if err != nil {
		return err
	}
	defer m.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-test.run=^$")
	child.Env = append(os.Environ(), roleEnv+"=big-sender", m.Env())
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	defer child.Wait()
	defer child.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := m.ProcessChildData(ctx, BlockUntilChild); err != nil {
		return err
	}
	v, ok := m.FromChild(strconv.Itoa(child.Process.Pid), "big")
	if !ok || len(v) != bigSize {
		return fmt.Errorf("got %d bytes (%v), want %d", len(v), ok, bigSize)
	}
	for i := 0; i < len(v); i += 4096 {
		if v[i] != byte(i>>12) {
			return fmt.Errorf("byte %d is %d, want %d", i, v[i], byte(i>>12))
		}
	}
	hwm, err := vmHWM()
	if err != nil {
		return err
	}
	fmt.Printf("VmHWM %d\n", hwm)
	return nil
}

func bigSender() error {
	c, err := InitChild("")
	if err != nil {
		return err
	}
	defer c.Close()
	v := make([]byte, bigSize)
	for i := 0; i < len(v); i += 4096 {
		v[i] = byte(i >> 12)
	}
	return c.ToMaster("big", v)
}

// vmHWM reads this process's peak resident set size, in bytes.
func vmHWM() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// plain caches the build plainBinary makes; TestMain removes its dir.
var plain struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// plainBinary is this test binary, or in a race build the same tests
// compiled without the race detector (built once per run).
func plainBinary(t *testing.T) string {
	if !raceEnabled {
		return os.Args[0]
	}
	gobin := testutil.RequireCommand(t, "go")
	plain.once.Do(func() {
		plain.dir, plain.err = os.MkdirTemp("", "family-plain-")
		if plain.err != nil {
			return
		}
		plain.bin = filepath.Join(plain.dir, "family.test")
		cmd := exec.Command(gobin, "test", "-c", "-o", plain.bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			plain.err = fmt.Errorf("building the tests without -race: %w\n%s", err, out)
		}
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return plain.bin
}
