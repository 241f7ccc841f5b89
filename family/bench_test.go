package family

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkChildToMaster measures child → master throughput for several
// value sizes, side by side with plain Unix-socket copies of the same bytes
// in the same run. The b.N messages go all three ways in 16 alternating
// chunks, so machine noise hits them alike. Reported: messages/s and MB/s
// of each, and the family's throughput over each plain one's (the median
// of the chunks' ratios).
//
//   - family: the real thing. A Child writes frames (writev); a Master
//     decodes them, allocates each value, and stores it through
//     ProcessChildData(BlockUntilData), one call per message.
//   - plain-keep: the same frames over a bare socket, each value read into
//     a new buffer of its size: the least any receiver that keeps values
//     must do. The ratio to it is the family's own overhead.
//   - plain-reuse: the same, read into one reused buffer: the cost of
//     moving the bytes alone, a floor no receiver that keeps values reaches.
//
// Both ends run in this process, on goroutines; the bytes still cross the
// kernel.
func BenchmarkChildToMaster(b *testing.B) {
	for _, size := range []int{16, 4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20} {
		b.Run(sizeName(size), func(b *testing.B) { benchChildToMaster(b, size) })
	}
}

func benchChildToMaster(b *testing.B, size int) {
	value := make([]byte, size)
	for i := range value {
		value[i] = byte(i)
	}
	fam := newFamilyPair(b, int64(size))
	keep, reuse := newPlainPair(b, true), newPlainPair(b, false)
	const chunks = 16
	var famTime, keepTime, reuseTime time.Duration
	var keepRatios, reuseRatios []float64
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(max(1, b.N/chunks), b.N-done)
		f := timeIt(func() { fam.send(b, value, k) })
		kt := timeIt(func() { keep.send(b, value, k) })
		r := timeIt(func() { reuse.send(b, value, k) })
		famTime, keepTime, reuseTime = famTime+f, keepTime+kt, reuseTime+r
		keepRatios = append(keepRatios, kt.Seconds()/f.Seconds())
		reuseRatios = append(reuseRatios, r.Seconds()/f.Seconds())
		done += k
	}
	b.StopTimer()
	n := float64(b.N)
	mb := n * float64(size) / 1e6
	b.ReportMetric(n/famTime.Seconds(), "family-msg/s")
	b.ReportMetric(n/keepTime.Seconds(), "keep-msg/s")
	b.ReportMetric(n/reuseTime.Seconds(), "reuse-msg/s")
	b.ReportMetric(mb/famTime.Seconds(), "family-MB/s")
	b.ReportMetric(mb/keepTime.Seconds(), "keep-MB/s")
	b.ReportMetric(mb/reuseTime.Seconds(), "reuse-MB/s")
	// Throughput ratios, the median over chunks: a burst of load from
	// elsewhere spoils a chunk, not the result.
	b.ReportMetric(median(keepRatios), "family/keep")
	b.ReportMetric(median(reuseRatios), "family/reuse")
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func timeIt(f func()) time.Duration {
	t := time.Now()
	f()
	return time.Since(t)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

type familyPair struct {
	m *Master
	c *Child
}

func newFamilyPair(b *testing.B, size int64) *familyPair {
	m, err := New(Options{Dir: b.TempDir(), MaxValueSize: max(size, DefaultMaxValueSize)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	c, err := NewChild(m.ConnectionInfo(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &familyPair{m: m, c: c}
}

// send moves k messages; each overwrites the last, as a progress value would.
func (p *familyPair) send(b *testing.B, value []byte, k int) {
	errc := make(chan error, 1)
	go func() {
		for range k {
			if err := p.c.ToMaster("k", value); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range k {
		if _, err := p.m.ProcessChildData(context.Background(), BlockUntilData); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

type plainPair struct {
	keep bool // a new buffer per value, else one reused buffer
	last []byte
	w    *net.UnixConn
	r    *bufio.Reader
	buf  []byte
	hdr  [headerSize]byte
	keyb [64]byte
}

func newPlainPair(b *testing.B, keep bool) *plainPair {
	path := filepath.Join(b.TempDir(), "plain")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	w, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		b.Fatal(err)
	}
	r, err := ln.AcceptUnix()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close(); r.Close() })
	return &plainPair{keep: keep, w: w, r: bufio.NewReaderSize(r, 64<<10)}
}

// send writes k frames exactly as a Child does and reads each value into a
// new buffer (keep) or the reused one.
func (p *plainPair) send(b *testing.B, value []byte, k int) {
	errc := make(chan error, 1)
	go func() {
		for range k {
			hdr := appendHeader(make([]byte, 0, headerSize), frameSet, 1, int64(len(value)))
			bufs := net.Buffers{hdr, []byte("k"), value}
			if _, err := bufs.WriteTo(p.w); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range k {
		if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
			b.Fatal(err)
		}
		kl := int(binary.BigEndian.Uint16(p.hdr[2:4]))
		vl := int(binary.BigEndian.Uint32(p.hdr[4:8]))
		if _, err := io.ReadFull(p.r, p.keyb[:kl]); err != nil {
			b.Fatal(err)
		}
		if p.keep || cap(p.buf) < vl {
			p.buf = make([]byte, vl)
		}
		if _, err := io.ReadFull(p.r, p.buf[:vl]); err != nil {
			b.Fatal(err)
		}
		p.last = p.buf // kept, as the master keeps the last value
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}
