package e2e

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orphand/orphand/proctree"
)

// The benchmarks' own process is a child subreaper with proctree's reaper,
// so that the processes they kill are reaped at once on both sides of a
// comparison (a backlog of zombies slows exits) and none is left to PID 1.
var (
	reaperOnce sync.Once
	reaperStop context.CancelFunc
	reaper     *proctree.Reaper
)

func startBenchReaper(b *testing.B) {
	b.Helper()
	reaperOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		r, err := proctree.StartReaper(ctx, proctree.ReaperConfig{
			EnableChildSubreaper: true,
			Logger:               slog.New(slog.DiscardHandler),
		})
		if err != nil {
			cancel()
			b.Fatalf("start the reaper: %v", err)
		}
		reaper, reaperStop = r, cancel
	})
}

// stopBenchReaper is called by TestMain after the run.
func stopBenchReaper() {
	if reaperStop != nil {
		reaperStop()
		reaper.Wait()
	}
}

// percentile returns the p-th percentile (0..100) of samples, in ms.
func percentile(samples []time.Duration, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

func percentileF(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[int(p/100*float64(len(s)-1))]
}
