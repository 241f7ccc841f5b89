package main

import (
	"context"
	"time"

	"github.com/orphand/orphand/ipc"
)

var lsCmd = &command{
	name:       "ls",
	synopsis:   "[-q]",
	summary:    "list groups (yours; root sees all)",
	interleave: true,
	help: `Lists the groups you may see — your own; root sees every group — including
recently ended ones, oldest first. "list" is an alias.

Examples:
  orphanctl ls
  orphanctl ls -q | xargs -n1 orphanctl kill   # kill all your groups
  orphanctl ls --json | jq '.groups[] | select(.state == "active") | .id'`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		quiet := fs.Bool("q", false, "print only the ids of active groups, one per line")
		fs.BoolVar(quiet, "quiet", false, "same as -q")
		_, err := c.parseArgs(fs, args, 0, 0, "")
		if err != nil {
			return err
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			groups, err := cl.List(ctx)
			switch {
			case err != nil:
				return err
			case c.json:
				c.printResponse(&ipc.Response{OK: true, Groups: groups})
			case *quiet:
				for _, g := range groups {
					if g.State == ipc.StateActive {
						c.printf("%s\n", g.ID)
					}
				}
			default:
				writeGroupTable(c.stdout, groups, time.Now())
			}
			return nil
		})
	},
}

var showCmd = &command{
	name:       "show",
	synopsis:   "GROUP",
	summary:    "show a group and its members",
	interleave: true,
	help: `Shows everything the agent knows about GROUP and the pids of its live
members (for a watch group: the targets not yet gone): whether a kill is
stuck, and what the group's cgroup used — CPU time, memory, pids, I/O, each
with the reason when the host cannot say; a dead group's final figures.

Example:
  orphanctl show 3f9c2a1b7d04`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		args, err := c.parseArgs(fs, args, 1, 1, "GROUP")
		if err != nil {
			return err
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			g, members, err := cl.Show(ctx, args[0])
			switch {
			case err != nil:
				return err
			case c.json:
				c.printResponse(&ipc.Response{OK: true, Group: g, Members: members})
			default:
				writeGroupDetails(c.stdout, g, members, time.Now())
			}
			return nil
		})
	},
}

var statusCmd = &command{
	name:       "status",
	synopsis:   "",
	summary:    "show the agent's health",
	interleave: true,
	help: `Shows the agent's version, backend, the kernel features it found, group
counts by state (and how many kills are stuck), connections and uptime; to
root also the figures of its Prometheus metrics: kills by reason, processes
killed, kill times, requests and refusals. Exit status 3 means no agent is
reachable, so 'orphanctl status >/dev/null' is a liveness check.

Example:
  orphanctl status`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		_, err := c.parseArgs(fs, args, 0, 0, "")
		if err != nil {
			return err
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			st, err := cl.Status(ctx)
			switch {
			case err != nil:
				return err
			case c.json:
				c.printResponse(&ipc.Response{OK: true, Status: st})
			default:
				writeStatus(c.stdout, st, c.socketShown())
			}
			return nil
		})
	},
}

var eventsCmd = &command{
	name:       "events",
	synopsis:   "[GROUP]",
	summary:    "follow the agent's events (of one group, or all yours)",
	interleave: true,
	help: `Prints the agent's events as they happen — registered, spawner_exited,
killing, stuck, killed, released — for GROUP, or for every group you may see, until
interrupted (exit status 0) or the agent ends the stream.

Examples:
  orphanctl events
  orphanctl events 3f9c2a1b7d04 --json`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		args, err := c.parseArgs(fs, args, 0, 1, "")
		if err != nil {
			return err
		}
		group := ""
		if len(args) == 1 {
			group = args[0]
		}
		cl, err := c.dial(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = cl.Close() }()
		events, err := cl.Subscribe(ctx, group)
		if err != nil {
			return err
		}
		for ev, err := range events {
			if err != nil {
				if ctx.Err() != nil {
					return nil // interrupted: the normal way to stop following
				}
				return err
			}
			if c.json {
				c.printJSON(ev)
			} else {
				writeEvent(c.stdout, ev)
			}
		}
		return nil
	},
}

// with dials, calls fn with the client and closes it.
func (c *cli) with(ctx context.Context, fn func(*ipc.Client) error) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	return fn(cl)
}

func (c *cli) socketShown() string {
	s, _ := c.chooseSocket() // dial has checked the flags
	return s.Path
}
