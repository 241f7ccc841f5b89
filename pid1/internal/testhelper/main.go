// Command testhelper is built by pid1's tests (never shipped):
//
//	testhelper nosubreaper CMD ARGS…
//	testhelper init CMD ARGS…
//
// nosubreaper runs CMD under a seccomp filter that makes
// prctl(PR_SET_CHILD_SUBREAPER) fail with EINVAL, as a restrictive container
// profile (or a kernel before 3.4) would: the way to put `orphand init` in
// the "neither PID 1 nor a subreaper" situation for real.
//
// init is pid1.Run with its defaults in a binary of its own, for the
// benchmarks: what `orphand init` would cost in start-up time and memory
// without the agent's packages linked in.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/orphand/orphand/pid1"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: testhelper nosubreaper|init CMD ARGS…")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "nosubreaper":
		if err := noSubreaper(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "testhelper:", err)
			os.Exit(1)
		}
	case "init":
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		res, err := pid1.Run(context.Background(), pid1.Config{Args: os.Args[2:], Logger: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "testhelper init:", err)
		}
		os.Exit(res.Code)
	}
	fmt.Fprintf(os.Stderr, "testhelper: unknown mode %q\n", os.Args[1])
	os.Exit(2)
}
