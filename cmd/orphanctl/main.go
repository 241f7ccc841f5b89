// Command orphanctl is the command-line client of the orphand agent: it
// runs a command under the agent's protection, registers and watches
// processes, and lists, shows, draws, kills and releases groups.
//
//	orphanctl [--socket PATH] [--json] COMMAND [ARGS]
//
// `orphanctl help` lists the commands and docs/orphanctl.md describes them,
// with the exit statuses scripts can rely on. This package is wiring only:
// the protocol and its client live in package ipc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/orphand/orphand/internal/version"
	"github.com/orphand/orphand/ipc"
)

// Exit statuses (documented in docs/orphanctl.md and `orphanctl help`).
const (
	exitOK          = 0
	exitRefused     = 1 // the agent refused or failed the request (its error code is printed)
	exitUsage       = 2 // a mistake on the command line
	exitUnreachable = 3 // no agent at the socket, or the connection broke
	exitInterrupted = 130
	// run only, before CMD replaces orphanctl (the conventions of env(1)):
	exitRunFailed   = 125 // orphanctl could not protect CMD (agent unreachable, refused, usage)
	exitCannotExec  = 126 // CMD was found but could not be executed
	exitNotFound    = 127 // CMD was not found
	interruptedBase = 128
)

// errHelp ends a command after its help was printed: exit status 0.
var errHelp = errors.New("help printed")

// exitError carries a specific exit status (run's 125/126/127).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// cli is one invocation's global state: where to print, which socket,
// which output format.
type cli struct {
	stdout, stderr io.Writer
	socket         string
	user, system   bool // --user, --system: which agent (see ipc.FindSocket)
	verbose        bool // -v: say which socket is used and why
	json           bool
	cmd            *command // the command running, for messages
	// onFlagSet, if set, sees each flag set the command makes (completion
	// lists flags this way).
	onFlagSet func(*flag.FlagSet)
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("orphanctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.globalFlags(fs)
	showVersion := fs.Bool("version", false, "print orphanctl's version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		_, _ = fmt.Fprintf(stderr, "orphanctl: %v\nRun 'orphanctl help' for usage.\n", err)
		return exitUsage
	}
	if *showVersion {
		_, _ = fmt.Fprintln(stdout, "orphanctl", version.String())
		return exitOK
	}
	if fs.NArg() == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name := fs.Arg(0)
	cmd := lookup(name)
	if cmd == nil {
		_, _ = fmt.Fprintf(stderr, "orphanctl: unknown command %q\nRun 'orphanctl help' for the list of commands.\n", name)
		return exitUsage
	}
	c.cmd = cmd

	ctx := context.Background()
	if !cmd.keepSignals {
		// run must leave signal dispositions alone: CMD inherits them.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
	}
	err := cmd.run(ctx, c, fs.Args()[1:])
	return c.exit(ctx, err)
}

// globalFlags defines the flags every command accepts, before or after its
// name.
func (c *cli) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "socket", c.socket, "the agent's socket `PATH` (default $"+ipc.SocketEnv+", else your per-user agent's if it runs, else "+ipc.DefaultSocket+")")
	fs.BoolVar(&c.user, "user", c.user, "talk to your per-user agent ($XDG_RUNTIME_DIR/"+ipc.UserSocketName+"), as systemctl --user does")
	fs.BoolVar(&c.system, "system", c.system, "talk to the system agent ("+ipc.DefaultSocket+"), as systemctl --system does")
	fs.BoolVar(&c.verbose, "v", c.verbose, "say on stderr which agent's socket is used, and why")
	fs.BoolVar(&c.json, "json", c.json, "print JSON (one object per line) instead of text")
}

// exit prints err the way its kind deserves and returns the exit status.
func (c *cli) exit(ctx context.Context, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			_, _ = fmt.Fprintf(c.stderr, "orphanctl %s: %v\n", c.cmd.name, ee.err)
		}
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		_, _ = fmt.Fprintf(c.stderr, "orphanctl %s: %v\nRun 'orphanctl %s --help' for usage.\n", c.cmd.name, ue.msg, c.cmd.name)
		return exitUsage
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		_, _ = fmt.Fprintf(c.stderr, "orphanctl %s: interrupted\n", c.cmd.name)
		return exitInterrupted
	}
	code, status := "", exitRefused
	var ae *ipc.Error
	switch {
	case errors.As(err, &ae):
		code = ae.Code
	case errors.Is(err, ipc.ErrUnreachable):
		code, status = "unreachable", exitUnreachable
	case errors.Is(err, ipc.ErrDisconnected), errors.Is(err, ipc.ErrOutOfSync):
		code, status = "disconnected", exitUnreachable
	default:
		code = "failed"
	}
	if c.json {
		e := ipc.Error{Code: code, Message: err.Error()}
		if ae != nil {
			e = *ae
		}
		c.printJSON(ipc.Response{OK: false, Error: &e})
	}
	_, _ = fmt.Fprintf(c.stderr, "orphanctl %s: %v\n", c.cmd.name, err)
	return status
}
