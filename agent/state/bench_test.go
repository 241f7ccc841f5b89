package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// record is about the size of a subtree group's record.
var benchRecord = []byte(`{"id":"0123456789ab","name":"ci-job-1234","kind":"subtree","on":"exit","owner_uid":1000,` +
	`"spawner":{"pid":12345,"start_time":987654321,"ino":4242},"targets":null,"parent":"","signal":"SIGTERM",` +
	`"grace_ms":0,"state":"active","backend":"cgroupfs","ref":{"id":"0123456789ab","cgroup":"/orphand/0123456789ab"},` +
	`"created":"2026-11-21T12:00:00.000000000Z","killed":0}`)

// BenchmarkCommit compares, side by side on the same file system, the cost
// of making one record durable: appended to the journal alone, appended in
// batches of 32 (concurrent registrations share a flush), and written the
// other way a store could work, one file per group replaced atomically
// (temporary file, flush, rename, flush of the directory). ns/op is per
// record in every case.
func BenchmarkCommit(b *testing.B) {
	b.Run("journal", func(b *testing.B) {
		s, err := Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ResetTimer()
		for i := range b.N {
			if err := s.Commit([]Change{{fmt.Sprintf("g%d", i%100), benchRecord}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("journal-batch32", func(b *testing.B) {
		s, err := Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		batch := make([]Change, 32)
		b.ResetTimer()
		for i := 0; i < b.N; i += len(batch) {
			for j := range batch {
				batch[j] = Change{fmt.Sprintf("g%d", (i+j)%1000), benchRecord}
			}
			if err := s.Commit(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file-per-group", func(b *testing.B) {
		dir := b.TempDir()
		b.ResetTimer()
		for i := range b.N {
			if err := writeAtomic(dir, fmt.Sprintf("g%d", i%100), benchRecord); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// writeAtomic is the one-file-per-group alternative, for comparison.
func writeAtomic(dir, id string, data []byte) error {
	final := filepath.Join(dir, id+".json")
	f, err := os.OpenFile(final+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(final+".tmp", final); err != nil {
		return err
	}
	return syncDir(dir)
}

// BenchmarkOpen measures a restarted agent's read of its records: opening
// a store of 10,000 records (which also compacts it into a new
// generation).
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	var batch []Change
	for i := range 10000 {
		r := strings.Replace(string(benchRecord), "0123456789ab", fmt.Sprintf("%012x", i), 2)
		batch = append(batch, Change{fmt.Sprintf("%012x", i), []byte(r)})
	}
	if err := s.Commit(batch); err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ResetTimer()
	for range b.N {
		s, err := Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		if s.Len() != 10000 {
			b.Fatalf("%d records", s.Len())
		}
		s.Close()
	}
}
