// Package version holds orphand's version string, set at build time with
// -ldflags "-X github.com/orphand/orphand/internal/version.Version=…"
// (the Makefile and the packages use `git describe`).
package version

import "runtime/debug"

// Version is the release version, or "devel" when not set by the build.
var Version = ""

// String returns the version: the one set at link time, else the module
// version recorded by the Go toolchain, else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
