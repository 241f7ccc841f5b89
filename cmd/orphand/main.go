// Command orphand is the orphand agent: no process outlives its spawner.
//
//	orphand [serve] [flags]   run the agent (the default command)
//	orphand version           print the version
//
// This file only dispatches; each command lives in its own file and its
// logic in the packages (agent, cgroup, policy, proctree).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/orphand/orphand/internal/version"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the agent could not start or stopped on an error
	exitUsage   = 2 // a bad flag, argument or configuration
)

// command is one subcommand: run gets the arguments after its name.
type command struct {
	run     func(args []string, stdout, stderr io.Writer) int
	summary string
}

// commands is the dispatch table. A new subcommand (e.g. `orphand init`,
// in init.go) adds one line here.
var commands = map[string]command{
	"serve":   {runServe, "run the agent (the default when no command is given)"},
	"init":    {runInit, "run CMD as a container's PID 1 (or a subreaper): reap, forward signals, leave nothing behind"},
	"version": {runVersion, "print the version"},
}

// order lists the commands for the usage text.
var order = []string{"serve", "init", "version"}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		switch {
		case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
			usage(stdout)
			return exitOK
		case len(args) > 0 && (args[0] == "-version" || args[0] == "--version"):
			return runVersion(args[1:], stdout, stderr)
		}
		return runServe(args, stdout, stderr) // `orphand --socket X` means `orphand serve --socket X`
	}
	if args[0] == "help" {
		usage(stdout)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		_, _ = fmt.Fprintf(stderr, "orphand: unknown command %q (run orphand --help)\n", args[0])
		return exitUsage
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	_, _ = fmt.Fprint(w, `orphand — no process outlives its spawner.

Usage:
  orphand [serve] [flags]     run the agent
  orphand COMMAND [args]

Commands:
`)
	for _, name := range order {
		if c, ok := commands[name]; ok {
			_, _ = fmt.Fprintf(w, "  %-9s %s\n", name, c.summary)
		}
	}
	_, _ = fmt.Fprint(w, "\nRun `orphand serve --help` for the agent's flags and configuration file.\n")
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		_, _ = fmt.Fprintln(stderr, "orphand version: takes no arguments")
		return exitUsage
	}
	_, _ = fmt.Fprintln(stdout, version.String())
	return exitOK
}
