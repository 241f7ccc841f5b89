package main

import (
	"context"
	"flag"
	"io"
	"slices"
	"strings"

	"github.com/orphand/orphand/internal/version"
)

var versionCmd = &command{
	name:       "version",
	synopsis:   "",
	summary:    "print orphanctl's version",
	interleave: true,
	help:       "Prints orphanctl's version (the agent's is in 'orphanctl status').",
	run: func(_ context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		_, err := c.parseArgs(fs, args, 0, 0, "")
		if err != nil {
			return err
		}
		if c.json {
			c.printJSON(map[string]string{"orphanctl": version.String()})
			return nil
		}
		c.printf("orphanctl %s\n", version.String())
		return nil
	},
}

var completionCmd = &command{
	name:       "completion",
	synopsis:   "bash|zsh|fish",
	summary:    "print a shell completion script",
	interleave: true,
	help: `Prints a completion script for bash, zsh or fish: commands, their flags,
group ids (from 'orphanctl ls -q'), pids and signal names.

Examples:
  source <(orphanctl completion bash)
  orphanctl completion bash > /usr/share/bash-completion/completions/orphanctl
  orphanctl completion zsh > "${fpath[1]}/_orphanctl"
  orphanctl completion fish > ~/.config/fish/completions/orphanctl.fish`,
	run: func(_ context.Context, c *cli, args []string) error {
		fs := c.newFlagSet()
		args, err := c.parseArgs(fs, args, 1, 1, "the shell (bash, zsh or fish)")
		if err != nil {
			return err
		}
		write, ok := completionWriters[args[0]]
		if !ok {
			return usagef("unsupported shell %q (bash, zsh or fish)", args[0])
		}
		write(c.stdout)
		return nil
	},
}

// completionWriters write each shell's completion script.
var completionWriters = map[string]func(io.Writer){
	"bash": writeBashCompletion,
	"zsh":  writeZshCompletion,
	"fish": writeFishCompletion,
}

// completionShells are the shells completionWriters knows, as the
// completion scripts offer them.
const completionShells = "bash zsh fish"

// flagSpec is one flag of a command, as a completion script needs it.
type flagSpec struct {
	name  string // without dashes
	value bool   // takes a value (is not a boolean flag)
	usage string // its help, placeholders unquoted
}

// commandFlagSpecs lists a command's flags, sorted by name, by asking it
// for its help: parsing is the first thing every command does, so nothing
// else runs.
func commandFlagSpecs(cmd *command) []flagSpec {
	var specs []flagSpec
	probe := &cli{stdout: io.Discard, stderr: io.Discard, cmd: cmd}
	probe.onFlagSet = func(fs *flag.FlagSet) {
		fs.VisitAll(func(f *flag.Flag) {
			b, isBool := f.Value.(interface{ IsBoolFlag() bool })
			_, usage := flag.UnquoteUsage(f)
			specs = append(specs, flagSpec{name: f.Name, value: !isBool || !b.IsBoolFlag(), usage: usage})
		})
	}
	_ = cmd.run(context.Background(), probe, []string{"--help"})
	slices.SortFunc(specs, func(a, b flagSpec) int { return strings.Compare(dashed(a.name), dashed(b.name)) })
	return slices.CompactFunc(specs, func(a, b flagSpec) bool { return a.name == b.name })
}

// commandFlags lists a command's flags, as "--name" (or "-q").
func commandFlags(cmd *command) []string {
	var flags []string
	for _, f := range commandFlagSpecs(cmd) {
		flags = append(flags, dashed(f.name))
	}
	return flags
}

// Commands whose positional arguments are group ids.
var takesGroup = []string{"attach", "show", "tree", "kill", "release", "events"}

// signalWords are the polite signals the scripts offer after --signal.
const signalWords = "TERM INT HUP QUIT USR1 USR2 KILL"
