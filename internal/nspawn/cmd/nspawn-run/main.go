// Command nspawn-run boots the test container by hand, for a human
// debugging a run: the same container, rootfs and setup as the tests get
// from internal/nspawn, with the script's output and (with -console)
// systemd's console on the terminal. It exits with the script's status, or
// 125 when the container could not run it.
//
//	nspawn-run [flags] [--] SCRIPT...
//	nspawn-run -share . -console -- 'systemctl status; ./x.test -test.v'
//	nspawn-run -rootfs        # print the rootfs path (build it if needed)
//
// The SCRIPT words are joined with spaces and run by bash as root after
// multi-user.target; "-" reads the script from stdin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/orphand/orphand/internal/nspawn"
)

// exitHarness is the status when the run itself failed (as in env(1)).
const exitHarness = 125

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	var binds, envs, units listFlag
	share := flag.String("share", "", "host `dir` bound read-write at "+nspawn.GuestShare+" (the working directory)")
	flag.Var(&binds, "bind", "extra bind `host:guest[:ro]` (repeatable)")
	flag.Var(&envs, "env", "`KEY=VALUE` for the script (repeatable)")
	flag.Var(&units, "unit", "unit `file` to install and enable before boot (repeatable)")
	timeout := flag.Duration("timeout", nspawn.DefaultTimeout, "bound on the whole run")
	console := flag.Bool("console", false, "show the container's console (systemd's messages) on stderr")
	verbose := flag.Bool("v", false, "log the harness's steps on stderr")
	rootfs := flag.Bool("rootfs", false, "print the rootfs path, building it if needed, and exit")
	flag.Usage = func() {
		_, _ = fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] [--] SCRIPT...\n", filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *rootfs {
		p, err := nspawn.Rootfs(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitHarness
		}
		fmt.Println(p)
		return 0
	}
	opts, err := options(flag.Args(), *share, binds, envs, units)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nspawn-run: %v\n", err)
		flag.Usage()
		return 2
	}
	opts.Timeout, opts.Output = *timeout, os.Stdout
	if *console {
		opts.Console = os.Stderr
	}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	code, err := nspawn.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nspawn-run: %v\n", err)
		return exitHarness
	}
	return code
}

// options turns the command line into nspawn.Options.
func options(args []string, share string, binds, envs, units []string) (nspawn.Options, error) {
	o := nspawn.Options{Share: share, Env: map[string]string{}, Units: map[string]string{}}
	switch {
	case len(args) == 0:
		return o, errors.New("no script given")
	case len(args) == 1 && args[0] == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return o, err
		}
		o.Script = string(b)
	default:
		o.Script = strings.Join(args, " ")
	}
	for _, b := range binds {
		f := strings.Split(b, ":")
		if len(f) < 2 || len(f) > 3 || (len(f) == 3 && f[2] != "ro") {
			return o, fmt.Errorf("-bind %q: want host:guest or host:guest:ro", b)
		}
		o.Binds = append(o.Binds, nspawn.Bind{Host: f[0], Guest: f[1], ReadOnly: len(f) == 3})
	}
	for _, e := range envs {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			return o, fmt.Errorf("-env %q: want KEY=VALUE", e)
		}
		o.Env[k] = v
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			return o, err
		}
		o.Units[filepath.Base(u)] = string(b)
	}
	return o, nil
}
