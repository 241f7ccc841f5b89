package security

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// BenchmarkConnectClose: an unprivileged client connects and disconnects
// (straight away, after a hello and its answer, in the middle of a line;
// see the helper's cycles), against the agent and, side by side, against
// a bare Go server that only reads a line and answers it — the ratio is
// what identifying the caller, counting it against the quotas and
// decoding cost. The agent's run also reports how its descriptors and RSS
// moved across all b.N cycles (the agent is built without the race
// detector).
func BenchmarkConnectClose(b *testing.B) {
	testutil.RequireRoot(b)
	b.Run("agent", func(b *testing.B) {
		a := startBinary(b, "", binaries(b).plainOrphand)
		a.cycles(b, attacker, 1000) // warm up
		base := a.settled(b, -1)
		b.ResetTimer()
		a.cycles(b, attacker, b.N)
		b.StopTimer()
		after := a.settled(b, base.fds)
		b.ReportMetric(float64(after.fds-base.fds), "fds-kept")
		b.ReportMetric(float64(after.rssKiB-base.rssKiB), "rss-growth-KiB")
	})
	b.Run("bare", func(b *testing.B) {
		a := &agent{socket: bareServer(b)}
		a.bins = binaries(b)
		a.cycles(b, attacker, 1000)
		b.ResetTimer()
		a.cycles(b, attacker, b.N)
	})
}

// bareServer listens on a socket every uid can reach and answers each line
// with {"ok":true}, one goroutine per connection; it stops with the
// benchmark.
func bareServer(b *testing.B) string {
	sock := filepath.Join(testutil.ReachableTempDir(b), "bare.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				r := bufio.NewReader(nc)
				for {
					if _, err := r.ReadBytes('\n'); err != nil {
						return
					}
					if _, err := nc.Write([]byte(`{"ok":true}` + "\n")); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return sock
}
