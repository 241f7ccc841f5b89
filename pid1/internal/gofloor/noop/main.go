// Command noop is the Go runtime's floor for pid1's benchmarks: it starts
// and exits at once, whatever its arguments. Built like the orphand binary
// (static, stripped), it measures what any Go program pays to start and
// exit. Never shipped.
package main

import "os"

func main() { os.Exit(0) }
