package pid1

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Socket activation (sd_listen_fds(3)): the service manager passes sockets
// as fds 3, 4, … with LISTEN_FDS=<count> and LISTEN_PID=<the pid they are
// for>. A program checks LISTEN_PID against its own pid, so that a child
// that merely inherits the environment does not take the sockets. When init
// is the receiver, CMD must see its own pid there — which does not exist
// until CMD is forked, and Go cannot run code between fork and exec. So, as
// catatonit rewrites LISTEN_PID in its child after fork, Run starts CMD
// through a small helper that sets LISTEN_PID to its own pid and then
// executes CMD in place (same pid): [ExecWithListenPID].

const (
	envListenPID   = "LISTEN_PID"
	envListenFDs   = "LISTEN_FDS"
	firstListenFD  = 3
	maxListenFDs   = 1 << 16
	listenHelperOK = "ORPHAND_LISTEN_PID_HELPER" // guards ExecWithListenPID against misuse
)

// listenFDs returns how many sockets were passed to pid by socket
// activation in env: 0 when LISTEN_PID is absent or names another process.
func listenFDs(env []string, pid int) (int, error) {
	p, ok := lookupEnv(env, envListenPID)
	if !ok || strings.TrimSpace(p) != strconv.Itoa(pid) {
		return 0, nil
	}
	s, _ := lookupEnv(env, envListenFDs)
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > maxListenFDs {
		return 0, fmt.Errorf("socket activation: LISTEN_PID is this process but LISTEN_FDS=%q is not a count", s)
	}
	return n, nil
}

// lookupEnv returns the value of key in env; the last entry wins, as in
// os/exec.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// withoutEnv returns env without any entry for key.
func withoutEnv(env []string, key string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return out
}

// ExecWithListenPID is the helper half of socket activation's pass-through
// (see [Config.ListenPIDHelper]): it sets LISTEN_PID to the calling
// process's pid and replaces the process with args[1:], executing the file
// args[0] (an absolute path). It returns only on failure. It refuses to run
// unless Run started it (the environment carries a marker that Run sets and
// this removes), so that it cannot be used to forge another program's
// LISTEN_PID by accident.
func ExecWithListenPID(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("listen-pid helper: want PATH ARGV0 [ARGS…], got %q", args)
	}
	env := os.Environ()
	if _, ok := lookupEnv(env, listenHelperOK); !ok {
		return fmt.Errorf("listen-pid helper: not started by orphand init (%s is not set)", listenHelperOK)
	}
	env = withoutEnv(withoutEnv(env, listenHelperOK), envListenPID)
	env = append(env, envListenPID+"="+strconv.Itoa(os.Getpid()))
	err := syscall.Exec(args[0], args[1:], env)
	return fmt.Errorf("listen-pid helper: exec %s: %w", args[0], err)
}
