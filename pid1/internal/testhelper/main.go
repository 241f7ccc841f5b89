// Command testhelper is built by pid1's tests (never shipped):
//
//	testhelper nosubreaper CMD ARGS…
//
// runs CMD under a seccomp filter that makes prctl(PR_SET_CHILD_SUBREAPER)
// fail with EINVAL, as a restrictive container profile (or a kernel before
// 3.4) would: the way to put `orphand init` in the "neither PID 1 nor a
// subreaper" situation for real.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 3 || os.Args[1] != "nosubreaper" {
		fmt.Fprintln(os.Stderr, "usage: testhelper nosubreaper CMD ARGS…")
		os.Exit(2)
	}
	if err := noSubreaper(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "testhelper:", err)
		os.Exit(1)
	}
}
