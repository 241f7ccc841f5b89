package proctree

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// BenchmarkDeathNotify measures how long after a SIGKILL the death of a
// process that is not a child (a grandchild) is noticed: through its pidfd
// (Process.Wait on the netpoller, and a Watcher), and by polling
// /proc/<pid>/stat every 100 ms and every second (a zombie counts as dead, to
// be fair to polling). Each op kills 8 grandchildren at once; the kill comes
// at a random moment of the polling period. Metrics: mean and max latency in
// ms; ns/op is the time of one op and means nothing here.
func BenchmarkDeathNotify(b *testing.B) {
	w, err := NewWatcher()
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.Run("pidfd-wait", func(b *testing.B) { benchNotify(b, 0, notifyWait) })
	b.Run("pidfd-watcher", func(b *testing.B) { benchNotify(b, 0, notifyWatcher(w)) })
	b.Run("poll-100ms", func(b *testing.B) { benchNotify(b, 100*time.Millisecond, notifyPoll(100*time.Millisecond)) })
	b.Run("poll-1s", func(b *testing.B) { benchNotify(b, time.Second, notifyPoll(time.Second)) })
}

// A notifier starts watching p and returns a channel that yields the moment
// the death was noticed.
type notifier func(p *Process) <-chan time.Time

func notifyWait(p *Process) <-chan time.Time {
	c := make(chan time.Time, 1)
	go func() {
		_ = p.Wait(context.Background())
		c <- time.Now()
	}()
	return c
}

func notifyWatcher(w *Watcher) notifier {
	return func(p *Process) <-chan time.Time {
		c := make(chan time.Time, 1)
		if _, err := w.Add(p, func() { c <- time.Now() }); err != nil {
			panic(err)
		}
		return c
	}
}

func notifyPoll(every time.Duration) notifier {
	return func(p *Process) <-chan time.Time {
		c := make(chan time.Time, 1)
		pid := p.Pid()
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for range t.C {
				if st, err := readStat(pid); err != nil || st.IsZombie() {
					c <- time.Now()
					return
				}
			}
		}()
		return c
	}
}

func benchNotify(b *testing.B, period time.Duration, notify notifier) {
	const k = 8
	var lat []time.Duration
	for b.Loop() {
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		for range k {
			wg.Go(func() {
				d, err := oneNotify(period, notify)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	if len(lat) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "latency-ms")
	b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "max-latency-ms")
}

// oneNotify starts sh with a sleeping grandchild, watches the grandchild,
// kills it at a random moment within period, and returns the delay until
// the death was noticed.
func oneNotify(period time.Duration, notify notifier) (time.Duration, error) {
	cmd := exec.Command("sh", "-c", "sleep 1000 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer killWait(cmd)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, err
	}
	p, err := Open(pid)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	seen := notify(p)
	if period > 0 {
		time.Sleep(rand.N(period))
	}
	start := time.Now()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return 0, err
	}
	select {
	case t := <-seen:
		return t.Sub(start), nil
	case <-time.After(period + 10*time.Second):
		return 0, fmt.Errorf("death of grandchild %d not noticed", pid)
	}
}

// BenchmarkReaperDrain compares how fast PID 1 of a new pid namespace reaps
// 10,000 orphaned zombies: tini (and dumb-init and catatonit where
// installed) side by side with a minimal PID 1 built on this package
// (internal/testbin's init: StartReaper, then the command through os/exec,
// so the reaper runs on its ownership-checking path). testdata/zombies.pl
// orphans the zombies onto PID 1 in batches of 2,000 (pid_max is shared)
// and times each drain until every zombie is gone; it also reads PID 1's
// VmHWM, RssAnon and RssFile at the end. Each op runs every PID 1 three
// times, interleaved; the metrics are medians: zombies reaped per second,
// peak RSS and its anonymous and file-backed parts (kB) per PID 1, and
// proctree's rate over tini's.
func BenchmarkReaperDrain(b *testing.B) {
	testutil.RequireRoot(b)
	tini := testutil.RequireCommand(b, "tini")
	testutil.RequireCommand(b, "unshare")
	testutil.RequireCommand(b, "perl")
	script, err := filepath.Abs("testdata/zombies.pl")
	if err != nil {
		b.Fatal(err)
	}
	type pid1 struct {
		name string
		argv []string
		env  []string
	}
	tb := testbinPath(b)
	inits := []pid1{
		{name: "tini", argv: []string{tini, "--"}},
		{name: "proctree", argv: []string{tb, "init"}},
		{name: "proctree-gomaxprocs1", argv: []string{tb, "init"}, env: []string{"GOMAXPROCS=1"}},
	}
	for _, name := range []string{"dumb-init", "catatonit"} {
		if path, err := exec.LookPath(name); err == nil {
			inits = append(inits, pid1{name: name, argv: []string{path, "--"}})
		}
	}
	rates := map[string][]float64{}
	hwms := map[string][]float64{}
	anons := map[string][]float64{}
	files := map[string][]float64{}
	for b.Loop() {
		for range 3 {
			for _, in := range inits {
				argv := append([]string{"--pid", "--fork", "--mount-proc"}, in.argv...)
				argv = append(argv, "perl", script, "5", "2000")
				cmd := exec.Command("unshare", argv...)
				cmd.Env = append(os.Environ(), in.env...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("%s: %v\n%s", in.name, err, out)
				}
				r, err := parseDrain(string(out))
				if err != nil {
					b.Fatalf("%s: %v\n%s", in.name, err, out)
				}
				rates[in.name] = append(rates[in.name], r.zombies/r.drain)
				hwms[in.name] = append(hwms[in.name], r.hwm)
				anons[in.name] = append(anons[in.name], r.anon)
				files[in.name] = append(files[in.name], r.file)
			}
		}
	}
	for _, in := range inits {
		b.ReportMetric(median(rates[in.name]), in.name+"-zombies/s")
		b.ReportMetric(median(hwms[in.name]), in.name+"-hwm-kB")
		b.ReportMetric(median(anons[in.name]), in.name+"-anon-kB")
		b.ReportMetric(median(files[in.name]), in.name+"-file-kB")
	}
	b.ReportMetric(median(rates["proctree"])/median(rates["tini"]), "proctree/tini-rate")
}

type drainResult struct{ zombies, drain, hwm, anon, file float64 }

// parseDrain reads zombies.pl's last line.
func parseDrain(out string) (drainResult, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r drainResult
	for _, kv := range strings.Fields(lines[len(lines)-1]) {
		k, v, _ := strings.Cut(kv, "=")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return r, fmt.Errorf("%s: %w", kv, err)
		}
		switch k {
		case "zombies":
			r.zombies = f
		case "drain_s":
			r.drain = f
		case "pid1_hwm_kb":
			r.hwm = f
		case "pid1_anon_kb":
			r.anon = f
		case "pid1_file_kb":
			r.file = f
		}
	}
	if r.zombies == 0 || r.drain == 0 {
		return r, fmt.Errorf("no result in %q", lines[len(lines)-1])
	}
	return r, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
