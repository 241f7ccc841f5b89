package state

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rec(s string) []byte { return []byte(`{"v":"` + s + `"}`) }

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func commit(t *testing.T, s *Store, changes ...Change) {
	t.Helper()
	if err := s.Commit(changes); err != nil {
		t.Fatal(err)
	}
}

func wantRecords(t *testing.T, s *Store, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	recs, err := s.Records()
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range recs {
		got[id] = string(r)
	}
	w := map[string]string{}
	for id, v := range want {
		w[id] = string(rec(v))
	}
	if !maps.Equal(got, w) {
		t.Fatalf("records %v, want %v", got, w)
	}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")}, Change{"b", rec("1")})
	commit(t, s, Change{"a", rec("2")}, Change{"c", rec("1")}, Change{"b", nil})
	wantRecords(t, s, map[string]string{"a": "2", "c": "1"})
	s.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v (%v), want 0700", fi.Mode(), err)
	}

	s = open(t, dir)
	wantRecords(t, s, map[string]string{"a": "2", "c": "1"})
	// Opening starts a new generation: one snapshot, one journal, the lock.
	if got := strings.Join(files(t, dir), " "); got != "journal.2 lock snapshot.2" {
		t.Errorf("files after reopening: %s", got)
	}
	commit(t, s, Change{"c", nil})
	s.Close()
	s = open(t, dir)
	wantRecords(t, s, map[string]string{"a": "2"})
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	_, err := Open(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "another orphand") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := range 3 * compactMin {
		commit(t, s, Change{fmt.Sprintf("g%d", i%5), rec(fmt.Sprint(i))})
	}
	if s.gen < 3 {
		t.Errorf("generation %d after %d commits of 5 records: the journal was not compacted", s.gen, 3*compactMin)
	}
	if n := len(files(t, dir)); n != 3 {
		t.Errorf("files %v: old generations left behind", files(t, dir))
	}
	want := map[string]string{}
	for i := 3*compactMin - 5; i < 3*compactMin; i++ {
		want[fmt.Sprintf("g%d", i%5)] = fmt.Sprint(i)
	}
	wantRecords(t, s, want)
	s.Close()
	wantRecords(t, open(t, dir), want)
}

// A crash in the middle of an append leaves a partial last line; it is
// dropped, the rest survives.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")}, Change{"b", rec("1")})
	journal := s.journal.Name()
	s.Close()
	line, _ := AppendEntry(nil, Entry{ID: "c", Record: rec("1")})
	f, err := os.OpenFile(journal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(line[:len(line)/2])
	f.Close()
	wantRecords(t, open(t, dir), map[string]string{"a": "1", "b": "1"})
}

// A damaged line in the middle is skipped; the lines after it still count.
func TestDamagedLine(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")})
	commit(t, s, Change{"b", rec("1")})
	commit(t, s, Change{"c", rec("1")})
	journal := s.journal.Name()
	s.Close()
	b, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"id":"b"`))
	b[i+7] = 'x' // the checksum no longer matches
	if err := os.WriteFile(journal, b, 0o600); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, open(t, dir), map[string]string{"a": "1", "c": "1"})
}

// A crash after the new snapshot is in place but before its journal
// exists: the snapshot alone is the state.
func TestCrashBeforeJournal(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")})
	s.mu.Lock()
	live, err := s.readCurrent()
	if err == nil {
		err = s.writeSnapshot(s.gen+1, live)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	commit(t, s, Change{"b", rec("lost with the old journal")}) // goes to the old generation's journal
	s.Close()
	wantRecords(t, open(t, dir), map[string]string{"a": "1"})
}

// A leftover temporary snapshot (crash before the rename) is ignored and
// removed.
func TestLeftoverTemp(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")})
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "snapshot.99.tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	wantRecords(t, s, map[string]string{"a": "1"})
	for _, f := range files(t, dir) {
		if strings.HasSuffix(f, ".tmp") {
			t.Errorf("%s left behind", f)
		}
	}
}

func TestNewerVersionRefused(t *testing.T) {
	dir := t.TempDir()
	line, _ := AppendEntry(nil, Entry{Header: &Header{Format: Format, Version: Version + 1, Kind: KindSnapshot, Gen: 5}})
	if err := os.WriteFile(filepath.Join(dir, "snapshot.5"), line, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	var v *versionError
	if !errors.As(err, &v) || !strings.Contains(err.Error(), "newer orphand") {
		t.Fatalf("Open of a newer store: %v", err)
	}
}

func TestUnreadableSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")})
	gen := s.gen
	s.Close()
	// A newer "snapshot" that is garbage (not a rename of a complete file:
	// only a bug or a disk could make one) is skipped for the good one.
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("snapshot.%d", gen+5)), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, open(t, dir), map[string]string{"a": "1"})
}

// After a failed write the next commit starts a new generation from what
// is known to be durable, then appends.
func TestCommitAfterFailure(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")})
	s.mu.Lock()
	s.journal.Close() // the next write fails
	s.mu.Unlock()
	if err := s.Commit([]Change{{"b", rec("1")}}); err == nil {
		t.Fatal("a write to a closed journal succeeded")
	}
	wantRecords(t, s, map[string]string{"a": "1"})
	commit(t, s, Change{"b", rec("2")})
	s.Close()
	wantRecords(t, open(t, dir), map[string]string{"a": "1", "b": "2"})
}

// A batch that reached the disk but whose flush failed never counts, not
// even when the next commit compacts from what is on disk.
func TestFailedFlushNotCounted(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	commit(t, s, Change{"a", rec("1")})
	s.mu.Lock()
	buf, err := AppendEntry(nil, Entry{ID: "b", Record: rec("1")})
	if err == nil {
		_, err = s.journal.Write(buf) // on disk, as if its flush had then failed
	}
	s.failedWrite()
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, map[string]string{"a": "1"})
	commit(t, s, Change{"c", rec("1")})
	s.Close()
	wantRecords(t, open(t, dir), map[string]string{"a": "1", "c": "1"})
}

func TestBadChanges(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.Commit([]Change{{"", rec("1")}}); err == nil {
		t.Error("a change without an id was accepted")
	}
	if err := s.Commit([]Change{{"a", []byte("{not json")}}); err == nil {
		t.Error("a record that is not JSON was accepted")
	}
	if err := s.Commit(nil); err != nil {
		t.Error(err)
	}
}

func TestReadEntriesLongLine(t *testing.T) {
	good, _ := AppendEntry(nil, Entry{ID: "a", Record: rec("1")})
	long := append(bytes.Repeat([]byte("x"), MaxLine+10), '\n')
	data := append(append(append([]byte{}, good...), long...), good...)
	var n int
	st, err := ReadEntries(bytes.NewReader(data), func(Entry) error { n++; return nil })
	if err != nil || n != 2 || st.Bad != 1 || st.Valid != int64(len(data)) {
		t.Fatalf("entries %d, stats %+v, err %v", n, st, err)
	}
}
