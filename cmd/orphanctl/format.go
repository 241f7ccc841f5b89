package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orphand/orphand/ipc"
)

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeGroupTable prints `ls`'s table.
func writeGroupTable(w io.Writer, groups []ipc.Group, now time.Time) {
	if len(groups) == 0 {
		_, _ = fmt.Fprintln(w, "no groups")
		return
	}
	tw := newTable(w)
	_, _ = fmt.Fprintln(tw, "ID\tNAME\tKIND\tSTATE\tOWNER\tSPAWNER\tMEMBERS\tAGE\tWHERE")
	for _, g := range groups {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n",
			g.ID, orDash(g.Name), kind(g), stateOf(g), g.OwnerUID, g.Spawner.Pid, g.Members,
			age(g.Created, now), orDash(where(g)))
	}
	_ = tw.Flush()
}

// kind is the group's kind as the tables show it: with its origin when it
// has one ("watch/compat": made by a REGISTER on the compatibility socket).
func kind(g ipc.Group) string {
	if g.Origin != "" {
		return g.Kind + "/" + g.Origin
	}
	return g.Kind
}

// origin says where a group came from, for show ("" for the agent's own
// socket).
func origin(g *ipc.Group) string {
	if g.Origin == ipc.OriginCompat {
		return "the compatibility socket (a REGISTER of the original orphand protocol: the target and its descendants are in the cgroup)"
	}
	return g.Origin
}

// where is the group's place: its systemd unit, else its cgroup.
func where(g ipc.Group) string {
	if g.Unit != "" {
		return g.Unit
	}
	return g.Cgroup
}

// writeGroupDetails prints `show`.
func writeGroupDetails(w io.Writer, g *ipc.Group, members []int, now time.Time) {
	tw := newTable(w)
	row := func(k, v string) {
		if v != "" {
			_, _ = fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("id", g.ID)
	row("name", g.Name)
	row("kind", g.Kind)
	row("origin", origin(g))
	row("state", stateOf(*g))
	if g.Stuck {
		row("stuck since", fmt.Sprintf("%s (%s ago): still populated after SIGKILL; the agent keeps killing it, and its log names what holds each process",
			g.StuckSince.Local().Format(time.RFC3339), age(g.StuckSince, now)))
	}
	row("owner uid", itoa(int(g.OwnerUID)))
	spawner := itoa(g.Spawner.Pid)
	if g.Spawner.StartTime != 0 {
		spawner += fmt.Sprintf(" (start time %d)", g.Spawner.StartTime)
	}
	row("spawner", spawner)
	row("trigger", trigger(g))
	row("kill", killSettings(g))
	row("parent", g.Parent)
	row("backend", g.Backend)
	row("cgroup", g.Cgroup)
	row("unit", g.Unit)
	row("created", fmt.Sprintf("%s (%s ago)", g.Created.Local().Format(time.RFC3339), age(g.Created, now)))
	if !g.Ended.IsZero() {
		row("ended", g.Ended.Local().Format(time.RFC3339))
		row("killed", itoa(g.Killed))
	}
	if len(g.Targets) > 0 {
		t := make([]string, len(g.Targets))
		for i, p := range g.Targets {
			t[i] = itoa(p.Pid)
		}
		row("targets", strings.Join(t, " "))
	}
	for _, r := range usageRows(g.Usage) {
		_, _ = fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	row("members", fmt.Sprintf("%d", len(members)))
	_ = tw.Flush()
	if len(members) > 0 {
		m := make([]string, len(members))
		for i, p := range members {
			m[i] = itoa(p)
		}
		_, _ = fmt.Fprintf(w, "  %s\n", strings.Join(m, " "))
	}
}

func trigger(g *ipc.Group) string {
	switch g.On {
	case ipc.OnDisconnect:
		return "the registering connection closes"
	case "", ipc.OnExit:
		return "the spawner exits"
	}
	return g.On
}

func killSettings(g *ipc.Group) string {
	if g.GraceMS == 0 {
		return "SIGKILL at once"
	}
	sig := g.Signal
	if sig == "" {
		sig = "the polite signal"
	}
	return fmt.Sprintf("%s, then SIGKILL after %v", sig, time.Duration(g.GraceMS)*time.Millisecond)
}

// writeStatus prints `status`.
func writeStatus(w io.Writer, st *ipc.Status, socket string) {
	tw := newTable(w)
	row := func(k, v string) { _, _ = fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("agent", fmt.Sprintf("orphand %s, pid %d, socket %s", st.Version, st.Pid, socket))
	row("mode", modeText(st))
	row("backend", st.Backend)
	row("features", orDash(strings.Join(st.Features, " ")))
	for _, k := range slices.Sorted(maps.Keys(st.Cgroup)) {
		row("  "+k, fmt.Sprint(st.Cgroup[k]))
	}
	row("groups", groupCounts(st.Groups))
	for _, r := range metricRows(st.Metrics) {
		row(r[0], r[1])
	}
	row("connections", fmt.Sprintf("%d (%d subscribed)", st.Connections, st.Subscribers))
	row("uptime", time.Duration(st.Uptime*float64(time.Second)).Round(time.Second).String())
	if c := st.Compat; c != nil {
		row("compat socket", fmt.Sprintf("%d connections; %d records handled, %d groups registered, %d refused",
			c.Connections, c.Records, c.Registered, c.Refused))
	}
	if len(st.Unrecorded) > 0 {
		row("unrecorded", strings.Join(st.Unrecorded, " "))
	}
	_ = tw.Flush()
}

// modeText says which kind of agent answered.
func modeText(st *ipc.Status) string {
	if st.Mode != ipc.ModeUser {
		return "system agent (serves every user)"
	}
	if st.UID == nil {
		return "per-user agent"
	}
	return fmt.Sprintf("per-user agent of uid %d (serves that user only)", *st.UID)
}

// writeEvent prints one event as a line.
func writeEvent(w io.Writer, ev ipc.Event) {
	var extra []string
	if ev.Pid != 0 {
		extra = append(extra, fmt.Sprintf("pid=%d", ev.Pid))
	}
	if ev.Reason != "" {
		extra = append(extra, "reason="+ev.Reason)
	}
	if ev.Killed != nil {
		extra = append(extra, fmt.Sprintf("killed=%d", *ev.Killed))
	}
	if ev.Millis != nil {
		extra = append(extra, fmt.Sprintf("ms=%.3f", *ev.Millis))
	}
	if len(ev.Members) > 0 {
		pids := make([]string, len(ev.Members))
		for i, p := range ev.Members {
			pids[i] = itoa(p)
		}
		extra = append(extra, "pids="+strings.Join(pids, ","))
	}
	if ev.Stuck {
		extra = append(extra, "stuck=true")
	}
	if ev.Usage != nil && ev.Usage.CPU != nil {
		extra = append(extra, "cpu="+usec(ev.Usage.CPU.UsageUsec))
	}
	_, _ = fmt.Fprintf(w, "%s  %-14s  %s  %s\n",
		ev.Time.Local().Format("2006-01-02T15:04:05.000"), ev.Event, ev.Group, strings.Join(extra, " "))
}

// age is a short, human duration since t.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
