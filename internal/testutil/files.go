package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// ReachableTempDir is a t.TempDir that every uid may enter and read (the
// test's own and its parent are 0700 otherwise), for the sockets and
// programs of tests that run clients as other uids.
func ReachableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// SyncBuffer is a bytes.Buffer that a process (or several goroutines) may
// write while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
