// Package cli is the command line of orphand's container init, shared by
// `orphand init` (in the agent's binary) and `orphand-init` (a binary of
// its own, linking only pid1, proctree and x/sys): the flags and
// environment variables of tini and dumb-init with their meaning, so that
// an image switches by changing the path in its ENTRYPOINT, plus orphand's
// own. The logic is pid1.Run; this package only reads the command line.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/orphand/orphand/internal/version"
	"github.com/orphand/orphand/pid1"
)

// ListenPIDHelperArg is the hidden first argument that makes the program
// the LISTEN_PID helper of socket activation (pid1.ExecWithListenPID).
const ListenPIDHelperArg = "--exec-with-listen-pid"

// Program is the binary the command line belongs to.
type Program struct {
	// Name is how messages, --help and --version name it ("orphand init").
	Name string
	// Self is the argv that runs this same command (for socket
	// activation's LISTEN_PID helper), e.g. /proc/self/exe init.
	Self []string
}

// Main runs the init command line args (after the program's name) with the
// environment env, and returns the exit code.
func Main(p Program, args, env []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == ListenPIDHelperArg {
		err := pid1.ExecWithListenPID(args[1:])
		_, _ = fmt.Fprintln(stderr, p.Name+":", err)
		return pid1.ExitCannotExec
	}
	o, err := parse(args, env)
	switch {
	case err != nil:
		_, _ = fmt.Fprintf(stderr, "%s: %v (run %s --help)\n", p.Name, err, p.Name)
		return pid1.ExitInitFailed
	case o.action == actHelp:
		_, _ = fmt.Fprint(stdout, strings.ReplaceAll(help, "NAME", p.Name))
		return 0
	case o.action == actVersion:
		_, _ = fmt.Fprintln(stdout, p.Name, version.String())
		return 0
	case o.action == actLicense:
		_, _ = fmt.Fprint(stdout, license)
		return 0
	}
	o.cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.level, ReplaceAttr: dropTime}))
	o.cfg.ListenPIDHelper = append(append([]string{}, p.Self...), ListenPIDHelperArg)
	res, err := pid1.Run(context.Background(), o.cfg)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, p.Name+":", err)
	}
	return res.Code
}

// dropTime leaves the time out of init's log lines: container runtimes and
// journald stamp them already.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
