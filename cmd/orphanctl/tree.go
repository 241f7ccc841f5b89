package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

var treeCmd = &command{
	name:       "tree",
	synopsis:   "GROUP",
	summary:    "draw a group's process tree",
	interleave: true,
	help: `Draws GROUP's live members as a process tree, the way pstree or systemd-cgls
do: pid and command line, children under their parent. A member whose parent
is not in the group (a double-forked daemon, reparented to a subreaper or to
pid 1) starts a tree of its own. The drawing is a snapshot read from /proc
right after asking the agent. With --json, prints the members with their
parent pids and command lines.

Example:
  orphanctl tree 3f9c2a1b7d04`,
	run: runTree,
}

func runTree(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlagSet()
	args, err := c.parseArgs(fs, args, 1, 1, "GROUP")
	if err != nil {
		return err
	}
	return c.with(ctx, func(cl *ipc.Client) error {
		g, members, err := cl.Show(ctx, args[0])
		if err != nil {
			return err
		}
		procs := readProcs(members)
		if c.json {
			c.printJSON(struct {
				Group     *ipc.Group `json:"group"`
				Processes []proc     `json:"processes"`
			}{g, procs})
			return nil
		}
		writeTree(c.stdout, g, procs)
		return nil
	})
}

// proc is one member as drawn.
type proc struct {
	Pid  int    `json:"pid"`
	PPid int    `json:"ppid"`
	Cmd  string `json:"cmd"`            // command line, or [comm] when it has none
	Gone bool   `json:"gone,omitempty"` // exited between the agent's answer and the read
}

const maxCmdLen = 200

// readProcs reads each pid's parent and command line from /proc.
func readProcs(pids []int) []proc {
	out := make([]proc, 0, len(pids))
	for _, pid := range pids {
		p, err := readProc(pid)
		if err != nil {
			p = proc{Pid: pid, Gone: true}
		}
		out = append(out, p)
	}
	return out
}

func readProc(pid int) (proc, error) {
	st, err := proctree.ReadStat(pid)
	if err != nil {
		return proc{}, err
	}
	p := proc{Pid: pid, PPid: st.PPid, Cmd: "[" + st.Comm + "]"}
	if cmd, err := proctree.ReadCmdline(pid, maxCmdLen); err == nil && cmd != "" {
		p.Cmd = cmd
	}
	return p, nil
}

// writeTree draws the group header and its process forest.
func writeTree(w io.Writer, g *ipc.Group, procs []proc) {
	head := g.ID
	if g.Name != "" {
		head += " (" + g.Name + ")"
	}
	head += fmt.Sprintf(": %s group, %s", kind(*g), g.State)
	if place := where(*g); place != "" {
		head += ", " + place
	}
	_, _ = fmt.Fprintln(w, head)
	if len(procs) == 0 {
		_, _ = fmt.Fprintln(w, "└─(no live members)")
		return
	}

	byPid := map[int]proc{}
	for _, p := range procs {
		byPid[p.Pid] = p
	}
	children := map[int][]int{}
	var roots []int
	for _, p := range procs {
		if _, ok := byPid[p.PPid]; ok && !p.Gone && p.PPid != p.Pid {
			children[p.PPid] = append(children[p.PPid], p.Pid)
		} else {
			roots = append(roots, p.Pid)
		}
	}
	slices.Sort(roots)
	for _, c := range children {
		slices.Sort(c)
	}
	label := func(p proc) string {
		s := strconv.Itoa(p.Pid) + " "
		switch {
		case p.Gone:
			s += "(exited)"
		default:
			s += p.Cmd
		}
		switch {
		case p.Pid == g.Spawner.Pid:
			s += "  ← spawner"
		case g.Origin != "" && len(g.Targets) > 0 && p.Pid == g.Targets[0].Pid:
			s += "  ← target" // a compat group's child: its spawner, the parent, is outside
		}
		return s
	}
	var draw func(pid int, prefix string, last bool)
	draw = func(pid int, prefix string, last bool) {
		branch, next := "├─", "│ "
		if last {
			branch, next = "└─", "  "
		}
		_, _ = fmt.Fprintf(w, "%s%s%s\n", prefix, branch, label(byPid[pid]))
		kids := children[pid]
		for i, k := range kids {
			draw(k, prefix+next, i == len(kids)-1)
		}
	}
	for i, r := range roots {
		draw(r, "", i == len(roots)-1)
	}
}
