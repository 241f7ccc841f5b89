package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/orphand/orphand/ipc"
)

// command is one orphanctl command.
type command struct {
	name     string
	synopsis string // arguments after the name
	summary  string // one line for the command list
	help     string // details and examples for `orphanctl NAME --help`
	// interleave lets flags follow positional arguments; run stops at the
	// first argument that is not a flag (CMD's own flags are CMD's).
	interleave bool
	// keepSignals: the command must not change signal dispositions (run
	// execs CMD, which inherits them).
	keepSignals bool
	run         func(ctx context.Context, c *cli, args []string) error
}

// commands in the order `orphanctl help` lists them. Filled by init to
// break the cycle with the help command, which lists them.
var commands []*command

func init() {
	commands = []*command{
		runCmd, registerCmd, watchCmd, attachCmd,
		lsCmd, showCmd, treeCmd, killCmd, releaseCmd, eventsCmd, statusCmd,
		completionCmd, versionCmd, helpCmd,
	}
}

var aliases = map[string]string{"list": "ls"}

func lookup(name string) *command {
	if a, ok := aliases[name]; ok {
		name = a
	}
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// newFlagSet returns the command's flag set with the global flags in it, so
// that they are accepted after the command name too.
func (c *cli) newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("orphanctl "+c.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.globalFlags(fs)
	return fs
}

// parse parses the command's arguments; -h/--help prints the command's help
// and returns errHelp.
func (c *cli) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	if c.onFlagSet != nil {
		c.onFlagSet(fs)
	}
	var (
		rest []string
		err  error
	)
	if c.cmd.interleave {
		rest, err = parseInterleaved(fs, args)
	} else {
		err = fs.Parse(args)
		rest = fs.Args()
	}
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(c.stdout, c.cmd, fs)
		return nil, errHelp
	}
	if err != nil {
		return nil, &usageError{msg: err.Error()}
	}
	return rest, nil
}

// parseArgs is parse followed by wantArgs: the flags, then between min and
// max (-1: any number) operands, names saying which are missing.
func (c *cli) parseArgs(fs *flag.FlagSet, args []string, min, max int, names string) ([]string, error) {
	rest, err := c.parse(fs, args)
	if err != nil {
		return nil, err
	}
	if err := wantArgs(rest, min, max, names); err != nil {
		return nil, err
	}
	return rest, nil
}

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, min, max int, names string) error {
	switch {
	case len(args) < min:
		return usagef("missing %s", names)
	case max >= 0 && len(args) > max:
		return usagef("unexpected argument %q", args[max])
	}
	return nil
}

func (c *cli) dial(ctx context.Context) (*ipc.Client, error) {
	s, err := c.chooseSocket()
	if err != nil {
		return nil, err
	}
	if c.verbose {
		_, _ = fmt.Fprintf(c.stderr, "orphanctl: using %s (%s)\n", s.Path, s.Why)
	}
	return ipc.Dial(ctx, s.Path)
}

// chooseSocket picks the agent's socket: --socket, else --user or
// --system, else ipc.FindSocket's order ($ORPHAND_SOCKET, your per-user
// agent's socket if it exists, the system agent's).
func (c *cli) chooseSocket() (ipc.Socket, error) {
	switch {
	case c.user && c.system:
		return ipc.Socket{}, usagef("--user and --system exclude each other")
	case c.socket != "" && (c.user || c.system):
		return ipc.Socket{}, usagef("--socket names the socket itself: leave out --user and --system")
	case c.socket != "":
		return ipc.Socket{Path: c.socket, User: c.socket == ipc.UserSocket(), Why: "--socket"}, nil
	case c.user:
		return ipc.FindSocket(ipc.ScopeUser), nil
	case c.system:
		return ipc.FindSocket(ipc.ScopeSystem), nil
	}
	return ipc.FindSocket(ipc.ScopeAuto), nil
}

// printJSON prints v as one line of JSON.
func (c *cli) printJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		_, _ = fmt.Fprintf(c.stderr, "orphanctl: cannot encode JSON: %v\n", err)
		return
	}
	_, _ = fmt.Fprintf(c.stdout, "%s\n", b)
}

// printResponse prints the agent's response (without its id) for --json.
func (c *cli) printResponse(resp *ipc.Response) {
	r := *resp
	r.ID = nil
	c.printJSON(r)
}

func (c *cli) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(c.stdout, format, args...)
}

const usageText = `orphanctl — talk to orphand: no process outlives its spawner.

Usage:
  orphanctl [--user | --system | --socket PATH] [-v] [--json] COMMAND [ARGS]

Commands:
%s
Global flags (before or after the command):
  --user          your per-user agent ($XDG_RUNTIME_DIR/orphand/orphand.sock)
  --system        the system agent (/run/orphand/orphand.sock)
  --socket PATH   the agent's socket; without these three: $ORPHAND_SOCKET, else
                  your per-user agent's socket if it exists, else the system's
  -v              say on stderr which socket is used, and why
  --json          print JSON, one object per line, instead of text
  --version       print orphanctl's version
  -h, --help      help; 'orphanctl COMMAND --help' for a command

Exit status:
  0    success
  1    the agent refused or failed the request (its error code is printed)
  2    usage error
  3    the agent could not be reached, or the connection broke
  130  interrupted (SIGINT/SIGTERM)
  run: CMD's own status once it runs; before that 125 (orphanctl failed:
       agent unreachable, request refused, usage), 126 (CMD not executable),
       127 (CMD not found)

Examples:
  orphanctl run -- make -j8 test        # make and everything it starts die with it
  orphanctl ls
  orphanctl tree 3f9c2a1b7d04
  orphanctl kill --grace 5s 3f9c2a1b7d04
`

func printUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-11s %s\n", c.name, c.summary)
	}
	_, _ = fmt.Fprintf(w, usageText, b.String())
}

func printCommandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	_, _ = fmt.Fprintf(w, "Usage: orphanctl %s %s\n\n%s\n", cmd.name, cmd.synopsis, strings.TrimSpace(cmd.help))
	var flags strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		if globalFlag(f.Name) {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(&flags, "  %s", dashed(f.Name))
		if arg != "" {
			fmt.Fprintf(&flags, " %s", arg)
		}
		fmt.Fprintf(&flags, "\n        %s\n", usage)
	})
	if flags.Len() > 0 {
		_, _ = fmt.Fprintf(w, "\nFlags:\n%s", flags.String())
	}
	_, _ = fmt.Fprint(w, "\nGlobal flags: --user, --system, --socket PATH, -v, --json (see 'orphanctl help').\n")
}

// globalFlag reports whether the flag is one of globalFlags'.
func globalFlag(name string) bool {
	switch name {
	case "socket", "user", "system", "v", "json":
		return true
	}
	return false
}

var helpCmd = &command{
	name:     "help",
	synopsis: "[COMMAND]",
	summary:  "show help for orphanctl or a command",
	help:     "Shows the list of commands, or one command's help.",
	run: func(_ context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		args, err := c.parse(fs, args)
		if err != nil {
			return err
		}
		if len(args) == 0 {
			printUsage(c.stdout)
			return nil
		}
		cmd := lookup(args[0])
		if cmd == nil {
			return usagef("unknown command %q", args[0])
		}
		// Show the command's own flags by asking it for its help.
		sub := &cli{stdout: c.stdout, stderr: c.stderr, cmd: cmd}
		return cmd.run(context.Background(), sub, []string{"--help"})
	},
}

// dashed writes a flag as users type it: -q, --name.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}
