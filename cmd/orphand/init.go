package main

import (
	"io"
	"os"

	"github.com/orphand/orphand/pid1/cli"
)

// runInit is `orphand init`: the container init, whose command line (tini's
// and dumb-init's flags, and orphand's) lives in pid1/cli, shared with the
// standalone orphand-init binary.
func runInit(args []string, stdout, stderr io.Writer) int {
	p := cli.Program{Name: "orphand init", Self: []string{"/proc/self/exe", "init"}}
	return cli.Main(p, args, os.Environ(), stdout, stderr)
}
