// Package testknobs holds switches that pid1's tests flip in the binary they
// build (pid1/internal/testhelper), to force a fallback that a normal
// machine never takes. The orphand binary never sets them.
package testknobs

// ReapOnSIGCHLD makes pid1.Run reap on SIGCHLD through os/signal while CMD
// runs, as it does when SIGCHLD's disposition cannot be changed, instead of
// on its waiter goroutine.
var ReapOnSIGCHLD bool
