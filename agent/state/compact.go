package state

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// compact writes every record into a new generation and switches the
// journal to it; see the package doc for why each step is where it is.
// live is every record, or nil to read them back from the current
// generation. It is called with s.mu held (or before the Store is shared).
func (s *Store) compact(live map[string][]byte) error {
	if live == nil {
		var err error
		if live, err = s.readCurrent(); err != nil {
			return err
		}
	}
	next := s.gen + 1
	if err := s.writeSnapshot(next, live); err != nil {
		return err
	}
	journal, err := os.OpenFile(s.path(KindJournal, next), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create the journal: %w", err)
	}
	hdr, err := AppendEntry(nil, Entry{Header: &Header{Format: Format, Version: Version, Kind: KindJournal, Gen: next}})
	if err == nil {
		_, err = journal.Write(hdr)
	}
	if err == nil {
		err = journal.Sync()
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		journal.Close()
		return fmt.Errorf("start journal %d: %w", next, err)
	}
	ids := make(map[string]struct{}, len(live))
	for id := range live {
		ids[id] = struct{}{}
	}
	if s.journal != nil {
		s.journal.Close()
	}
	s.journal, s.gen, s.entries, s.broken = journal, next, 0, false
	s.ids, s.good = ids, int64(len(hdr))
	s.removeBefore(next)
	return nil
}

// writeSnapshot writes snapshot.gen atomically: a temporary file, flushed,
// renamed into place.
func (s *Store) writeSnapshot(gen uint64, live map[string][]byte) error {
	ids := make([]string, 0, len(live))
	for id := range live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	buf, err := AppendEntry(nil, Entry{Header: &Header{Format: Format, Version: Version, Kind: KindSnapshot, Gen: gen, Count: len(ids)}})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if buf, err = AppendEntry(buf, Entry{ID: id, Record: live[id]}); err != nil {
			return err
		}
	}
	final := s.path(KindSnapshot, gen)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create a snapshot: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort: Open removes leftovers too
		return fmt.Errorf("write snapshot %d: %w", gen, err)
	}
	return nil
}

// removeBefore deletes the files of generations older than gen, and
// temporary files left by a crash. Failures only leave clutter.
func (s *Store) removeBefore(gen uint64) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		g, snap := fileGen(name, KindSnapshot)
		j, journal := fileGen(name, KindJournal)
		stale := snap && g < gen || journal && j < gen || strings.HasSuffix(name, ".tmp")
		if !stale {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
			s.log.Debug("cannot remove an old state file", "file", name, "err", err)
		}
	}
}

// syncDir flushes a directory, so that the names created in it survive.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush directory %s: %w", dir, err)
	}
	return nil
}
