package proc

import (
	"bytes"
	"log/slog"
	"testing"
)

// BenchmarkUntrackedEvent: the agent's cost for one fork elsewhere on the
// host while it follows forks with the proc connector: decode the datagram
// and look the parent up among 10,000 tracked pids (it is not one). Every
// fork on the host costs this much, tracked or not.
func BenchmarkUntrackedEvent(b *testing.B) {
	be := &Backend{log: slog.New(slog.DiscardHandler), index: map[int]*member{}, groups: map[string]*Group{}}
	g := &Group{b: be, id: "g", children: map[*Group]struct{}{}, members: map[*member]struct{}{}}
	for pid := 100000; pid < 110000; pid++ {
		m := &member{pid: pid, g: g}
		be.index[pid] = m
		g.members[m] = struct{}{}
	}
	fork := message(cnIdxProc, cnValProc, 0, event(evFork, 42, 10, 10, 11, 11))
	exit := message(cnIdxProc, cnValProc, 0, event(evExit, 43, 11, 11, 0, 17, 10, 10))
	r := bytes.NewReader(nil)
	var p msgParser
	for b.Loop() {
		for _, msg := range [][]byte{fork, exit} {
			r.Reset(msg)
			if err := p.parse(r, be.handleEvent); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/fork+exit")
}
