package agent

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

// Environment of the client helper: the test binary re-executed (as
// another uid, through setpriv) to speak to the agent as that user.
const (
	helperEnv     = "ORPHAND_AGENT_TEST_CLIENT" // socket path
	helperReqsEnv = "ORPHAND_AGENT_TEST_REQS"   // request lines, separated by newlines
)

// helperMain runs the client helper when the environment asks for it: it
// sends each request line and prints each response line to stdout. It
// reports whether it ran (TestMain then returns).
func helperMain() bool {
	sock := os.Getenv(helperEnv)
	if sock == "" {
		return false
	}
	nc, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper dial:", err)
		os.Exit(3)
	}
	r := bufio.NewReaderSize(nc, 1<<20)
	for _, line := range strings.Split(os.Getenv(helperReqsEnv), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if _, err := nc.Write([]byte(line + "\n")); err != nil {
			// An agent that refuses the connection answers and closes
			// before reading: print its answer, if any.
			if resp, rerr := r.ReadString('\n'); rerr == nil {
				fmt.Print(resp)
				break
			}
			fmt.Fprintln(os.Stderr, "helper write:", err)
			os.Exit(3)
		}
		resp, err := r.ReadString('\n')
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper read:", err)
			os.Exit(3)
		}
		fmt.Print(resp)
	}
	nc.Close()
	return true
}
