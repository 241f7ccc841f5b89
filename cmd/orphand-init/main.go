// Command orphand-init is orphand's container init as a binary of its own:
// the same command line and behaviour as `orphand init`, linking only pid1,
// proctree and golang.org/x/sys, not the agent. It starts faster and needs
// less memory than the agent's binary (docs/benchmarks/init.md), which is
// what a process that starts every container wants.
//
//	ENTRYPOINT ["/usr/bin/orphand-init", "--"]
//
// Run `orphand-init --help` for the flags; docs/init.md for the behaviour.
package main

import (
	"os"

	"github.com/orphand/orphand/pid1/cli"
)

func main() {
	p := cli.Program{Name: "orphand-init", Self: []string{"/proc/self/exe"}}
	os.Exit(cli.Main(p, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
