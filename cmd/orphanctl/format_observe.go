package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/orphand/orphand/ipc"
)

// stateOf is a group's state as ls and show print it: a stuck kill says so.
func stateOf(g ipc.Group) string {
	if g.Stuck {
		return g.State + " (stuck)"
	}
	return g.State
}

// usageRows are show's lines for what the group used: each figure, or
// why there is none.
func usageRows(u *ipc.Usage) [][2]string {
	if u == nil {
		return nil
	}
	if why := u.Unavailable["cgroup"]; why != "" {
		return [][2]string{{"usage", "- (" + why + ")"}}
	}
	rows := [][2]string{{"usage", "so far"}}
	if u.Final {
		rows[0][1] = "final, read when the group died"
	}
	row := func(name string, there bool, text func() string) {
		if there {
			rows = append(rows, [2]string{"  " + name, text()})
		} else {
			rows = append(rows, [2]string{"  " + name, "- (" + u.Unavailable[name] + ")"})
		}
	}
	row("cpu", u.CPU != nil, func() string {
		return fmt.Sprintf("%s (user %s, system %s)", usec(u.CPU.UsageUsec), usec(u.CPU.UserUsec), usec(u.CPU.SystemUsec))
	})
	row("memory", u.Memory != nil, func() string { return bytesAndPeak(u.Memory.CurrentBytes, u.Memory.PeakBytes) })
	row("pids", u.Pids != nil, func() string {
		if u.Pids.Peak == nil {
			return fmt.Sprintf("%d", u.Pids.Current)
		}
		return fmt.Sprintf("%d (peak %d)", u.Pids.Current, *u.Pids.Peak)
	})
	row("io", u.IO != nil, func() string {
		return fmt.Sprintf("read %s, written %s", size(u.IO.ReadBytes), size(u.IO.WriteBytes))
	})
	return rows
}

// usec writes a CPU time: to the microsecond below a second, to the
// millisecond above.
func usec(us uint64) string {
	d := time.Duration(us) * time.Microsecond
	if d >= time.Second {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

func bytesAndPeak(cur uint64, peak *uint64) string {
	if peak == nil {
		return size(cur)
	}
	return size(cur) + " (peak " + size(*peak) + ")"
}

// size writes a number of bytes in binary units.
func size(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// groupCounts is status's groups line: the total over the states, each
// state, and how many of the killing groups are stuck.
func groupCounts(groups map[string]int) string {
	var counts []string
	total := 0
	for _, state := range slices.Sorted(maps.Keys(groups)) {
		if state == ipc.GroupsStuck {
			continue // a subset of killing
		}
		counts = append(counts, fmt.Sprintf("%d %s", groups[state], state))
		total += groups[state]
	}
	s := fmt.Sprintf("%d (%s)", total, orDash(strings.Join(counts, ", ")))
	if n := groups[ipc.GroupsStuck]; n > 0 {
		s += fmt.Sprintf("; %d stuck", n)
	}
	return s
}

// metricRows are status's lines for the agent's figures: those of its
// Prometheus metrics.
func metricRows(m *ipc.Metrics) [][2]string {
	if m == nil {
		return nil
	}
	var kills []string
	var nkills uint64
	for _, r := range slices.Sorted(maps.Keys(m.Kills)) {
		nkills += m.Kills[r]
		if m.Kills[r] > 0 {
			kills = append(kills, fmt.Sprintf("%d %s", m.Kills[r], r))
		}
	}
	rows := [][2]string{
		{"kills", fmt.Sprintf("%d (%s)", nkills, orDash(strings.Join(kills, ", ")))},
		{"processes killed", fmt.Sprint(m.ProcessesKilled)},
	}
	if h := m.KillDuration; h.Count > 0 {
		rows = append(rows, [2]string{"kill time", fmt.Sprintf("mean %s, p50 %s, p99 %s (%d kills, cause to empty)",
			seconds(h.Sum/float64(h.Count)), quantile(h, 0.5), quantile(h, 0.99), h.Count)})
	}
	var ok, all uint64
	refused := map[string]uint64{}
	for _, results := range m.Requests {
		for result, n := range results {
			all += n
			if result == "ok" {
				ok += n
			} else {
				refused[result] += n
			}
		}
	}
	var ref []string
	for _, code := range slices.Sorted(maps.Keys(refused)) {
		ref = append(ref, fmt.Sprintf("%d %s", refused[code], code))
	}
	line := fmt.Sprintf("%d (%d ok", all, ok)
	if len(ref) > 0 {
		line += "; refused: " + strings.Join(ref, ", ")
	}
	return append(rows, [2]string{"requests", line + ")"})
}

// quantile estimates the q-quantile of h as Prometheus's
// histogram_quantile does: linearly within the bucket it falls in.
func quantile(h ipc.Histogram, q float64) string {
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for _, b := range h.Buckets {
		if float64(b.Count) >= rank {
			if b.Count == below {
				return seconds(b.LE)
			}
			return "~" + seconds(lower+(b.LE-lower)*(rank-float64(below))/float64(b.Count-below))
		}
		lower, below = b.LE, b.Count
	}
	return "> " + seconds(lower)
}

func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
