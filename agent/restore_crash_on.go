//go:build orphand_crashpoints

package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// CrashEnv names the crash point of a test build: "NAME" (the first time
// the agent reaches it) or "NAME@N" (the Nth time). The agent then writes
// one line to stderr and SIGKILLs itself. Only a binary built with the tag
// orphand_crashpoints reads it: release builds have no crash points at all,
// so no environment can make them kill themselves.
const CrashEnv = "ORPHAND_CRASHPOINT"

var crash struct {
	once sync.Once
	name string
	at   int

	mu   sync.Mutex
	hits int
}

func crashPoint(name string) {
	crash.once.Do(func() {
		v := os.Getenv(CrashEnv)
		crash.name, crash.at = v, 1
		if n, at, ok := strings.Cut(v, "@"); ok {
			crash.name = n
			crash.at, _ = strconv.Atoi(at)
		}
	})
	if crash.name != name {
		return
	}
	crash.mu.Lock()
	crash.hits++
	hit := crash.hits == crash.at
	crash.mu.Unlock()
	if hit {
		fmt.Fprintf(os.Stderr, "orphand: crash point %s reached: SIGKILL\n", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

const crashPoints = true
