package main

import (
	"context"
	"flag"
	"os"
	"strconv"

	"github.com/orphand/orphand/ipc"
)

// killFlags are the kill settings shared by run, register and watch.
type killFlags struct {
	name   string
	grace  graceFlag
	signal string
}

func (k *killFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&k.name, "name", "", "a `NAME` for the group, shown by ls")
	fs.Var(&k.grace, "grace", "after the polite signal, wait up to `D` (5s, 250ms, or seconds) before SIGKILL; 0 means SIGKILL at once (default: the agent's)")
	fs.StringVar(&k.signal, "signal", "", "the polite `SIGNAL` sent first when there is a grace (TERM, SIGINT, 15; default: the agent's, SIGTERM)")
}

// printGroupResult prints a new group: its id alone in text (for
// `g=$(orphanctl register)`), the whole response with --json.
func (c *cli) printGroupResult(g *ipc.Group) {
	if c.json {
		c.printResponse(&ipc.Response{OK: true, Group: g})
		return
	}
	c.printf("%s\n", g.ID)
}

var registerCmd = &command{
	name:       "register",
	synopsis:   "[--pid P] [--name N] [--grace D] [--signal S] [--parent GROUP]",
	summary:    "make a group of a process and all its descendants",
	interleave: true,
	help: `Registers process P — by default the process that called orphanctl (its
parent, e.g. your shell script) — with the agent: P and every process that
descends from it, now or later, form a group, killed entirely as soon as P
exits. Prints the group's id.

Examples:
  g=$(orphanctl register)                 # this script: kill what it leaves behind
  orphanctl register --pid 4242 --name web --grace 10s --signal INT`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		var (
			pid    pidFlag
			k      killFlags
			parent string
		)
		fs.Var(&pid, "pid", "the spawner's `PID` (default: orphanctl's parent process)")
		fs.StringVar(&parent, "parent", "", "nest the new group under `GROUP` (default: the group P is already in, if any)")
		k.define(fs)
		_, err := c.parseArgs(fs, args, 0, 0, "")
		if err != nil {
			return err
		}
		if pid == 0 {
			pid = pidFlag(os.Getppid())
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			g, err := cl.Register(ctx, ipc.RegisterOptions{
				Pid: int(pid), Name: k.name, Grace: k.grace.duration(), Signal: k.signal, Parent: parent,
			})
			if err == nil {
				c.printGroupResult(g)
			}
			return err
		})
	},
}

var watchCmd = &command{
	name:       "watch",
	synopsis:   "--pid W --kill P[,P...] [--name N] [--grace D] [--signal S]",
	summary:    "kill given processes when another one exits",
	interleave: true,
	help: `Makes a watch group: when process W exits, processes P... are killed. The
agent holds each of them by pidfd from now on, so a P that exits first and
whose pid is then reused by another process is never hit. Unlike register,
only the listed processes are killed, not their descendants. Prints the
group's id.

Examples:
  orphanctl watch --pid $$ --kill 4242,4243
  orphanctl watch --pid 100 --kill 200 --kill 201 --grace 2s`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		var (
			pid     pidFlag
			targets pidList
			k       killFlags
		)
		fs.Var(&pid, "pid", "the watched process `W`")
		fs.Var(&targets, "kill", "`P[,P...]`: the processes to kill when W exits (repeatable)")
		k.define(fs)
		_, err := c.parseArgs(fs, args, 0, 0, "")
		if err != nil {
			return err
		}
		if pid == 0 {
			return usagef("--pid W is required")
		}
		if len(targets) == 0 {
			return usagef("--kill P[,P...] is required")
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			g, err := cl.Watch(ctx, ipc.WatchOptions{
				Pid: int(pid), Kill: targets, Name: k.name, Grace: k.grace.duration(), Signal: k.signal,
			})
			if err == nil {
				c.printGroupResult(g)
			}
			return err
		})
	},
}

var attachCmd = &command{
	name:       "attach",
	synopsis:   "GROUP PID",
	summary:    "move a process into a group",
	interleave: true,
	help: `Moves process PID into subtree group GROUP; what PID forks from then on is
in the group too. You must be allowed to kill PID (same uid, or root).

Example:
  orphanctl attach 3f9c2a1b7d04 4242`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		args, err := c.parseArgs(fs, args, 2, 2, "GROUP and PID")
		if err != nil {
			return err
		}
		pid, err := parsePid(args[1])
		if err != nil {
			return usagef("%v", err)
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			return c.done(cl.Attach(ctx, args[0], pid))
		})
	},
}

var killCmd = &command{
	name:       "kill",
	synopsis:   "GROUP [--grace D]",
	summary:    "kill a group now and wait until it is empty",
	interleave: true,
	help: `Kills every process of GROUP (and of groups nested in it) now, as if its
spawner had exited, and returns once the group is empty. With a grace, the
group's polite signal goes first and SIGKILL follows after D.

Examples:
  orphanctl kill 3f9c2a1b7d04
  orphanctl kill 3f9c2a1b7d04 --grace 10s`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		var grace graceFlag
		fs.Var(&grace, "grace", "wait up to `D` after the polite signal before SIGKILL (default: the group's own)")
		args, err := c.parseArgs(fs, args, 1, 1, "GROUP")
		if err != nil {
			return err
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			n, err := cl.Kill(ctx, args[0], grace.duration())
			switch {
			case err != nil:
				return err
			case c.json:
				c.printResponse(&ipc.Response{OK: true, Killed: &n})
			default:
				c.printf("group %s: %d %s killed\n", args[0], n, plural(n, "process", "processes"))
			}
			return nil
		})
	},
}

var releaseCmd = &command{
	name:       "release",
	synopsis:   "GROUP",
	summary:    "stop watching a group, leaving its processes alone",
	interleave: true,
	help: `Releases GROUP: the agent stops watching it and will not kill it; its
processes carry on.

Example:
  orphanctl release 3f9c2a1b7d04`,
	run: func(ctx context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		args, err := c.parseArgs(fs, args, 1, 1, "GROUP")
		if err != nil {
			return err
		}
		return c.with(ctx, func(cl *ipc.Client) error {
			return c.done(cl.Release(ctx, args[0]))
		})
	},
}

// done reports the end of a request whose success has nothing to say:
// silence in text, the ok response with --json.
func (c *cli) done(err error) error {
	if err == nil && c.json {
		c.printResponse(&ipc.Response{OK: true})
	}
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// itoa is strconv.Itoa, short for tables.
func itoa(n int) string { return strconv.Itoa(n) }
