package state

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// compactMin is the journal length below which it is never compacted.
const compactMin = 1024

// Change is one record to write: Record is its JSON, nil to delete it.
type Change struct {
	ID     string
	Record []byte
}

// Store is an open state directory. Its methods are safe for concurrent use
// (commits are serialised).
type Store struct {
	dir  string
	log  *slog.Logger
	lock *os.File

	mu      sync.Mutex
	gen     uint64
	journal *os.File
	entries int                 // lines in the journal after its header
	ids     map[string]struct{} // the ids that have a record; the records stay on disk only
	good    int64               // the journal's length as of its last successful flush
	broken  bool                // the journal may end in a torn line: compact before appending
	closed  bool
}

// Open opens (creating it if needed, mode 0700) the state directory dir,
// locks it, reads the records of the latest complete generation and starts
// a new one. log receives what was found (damaged lines, leftovers).
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: create the state directory: %w (choose another with --state-dir)", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: open the state directory's lock: %w", err)
	}
	if err := flock(lock); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state: another orphand is using the state directory %s (stop it, or give this one another --state-dir)", dir)
		}
		return nil, fmt.Errorf("state: lock %s: %w", dir, err)
	}
	s := &Store{dir: dir, log: log, lock: lock}
	live, err := s.load()
	if err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.compact(live); err != nil {
		lock.Close()
		return nil, fmt.Errorf("state: start a new generation in %s: %w", dir, err)
	}
	return s, nil
}

func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Records reads every record, by id, back from the current generation's
// files: the Store keeps only the ids in memory (a restarted agent reads
// them once; holding every record's bytes would double the agent's memory
// per group).
func (s *Store) Records() (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readCurrent()
}

// Len is the number of records.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// Commit makes changes durable, in order, with one write and one flush:
// when it returns nil they survive a crash. On an error none of them is
// counted as written (some may still be on disk; a later commit of the same
// ids supersedes them) and the next commit starts a new generation first.
func (s *Store) Commit(changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	var buf []byte
	for _, c := range changes {
		var err error
		buf, err = AppendEntry(buf, Entry{ID: c.ID, Record: c.Record, Delete: c.Record == nil})
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("state: store closed")
	}
	if s.broken {
		if err := s.compact(nil); err != nil {
			return fmt.Errorf("state: recover the journal after a failed write: %w", err)
		}
	}
	if _, err := s.journal.Write(buf); err != nil {
		s.failedWrite()
		return fmt.Errorf("state: append to %s: %w", s.journal.Name(), err)
	}
	if err := s.journal.Sync(); err != nil {
		s.failedWrite()
		return fmt.Errorf("state: flush %s: %w", s.journal.Name(), err)
	}
	s.good += int64(len(buf))
	for _, c := range changes {
		if c.Record == nil {
			delete(s.ids, c.ID)
		} else {
			s.ids[c.ID] = struct{}{}
		}
	}
	s.entries += len(changes)
	if s.entries >= compactMin && s.entries > 2*len(s.ids) {
		if err := s.compact(nil); err != nil {
			// The current generation is still whole; try again later.
			s.log.Warn("compacting the state journal failed; it keeps growing until a retry works", "dir", s.dir, "err", err)
			s.entries = 0
		}
	}
	return nil
}

// failedWrite marks the journal as possibly ending in a torn or unflushed
// batch. Reads of this generation stop at s.good, so the failed batch never
// counts, even if some of it reached the disk.
func (s *Store) failedWrite() {
	s.broken = true
	_ = s.journal.Truncate(s.good) // best effort: readers stop at s.good anyway
}

// readCurrent reads the current generation: its snapshot, then its journal
// up to the last successful flush.
func (s *Store) readCurrent() (map[string][]byte, error) {
	live, err := s.readFile(KindSnapshot, s.gen)
	if err != nil {
		return nil, fmt.Errorf("state: read back %s: %w", s.path(KindSnapshot, s.gen), err)
	}
	return s.readJournal(s.gen, live, s.good)
}

// Close closes the journal and releases the directory's lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.journal != nil {
		err = s.journal.Close()
	}
	s.lock.Close()
	return err
}

// fileGen parses "snapshot.7" or "journal.7".
func fileGen(name, kind string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, kind+".")
	if !ok {
		return 0, false
	}
	g, err := strconv.ParseUint(rest, 10, 64)
	return g, err == nil && strconv.FormatUint(g, 10) == rest
}

func (s *Store) path(kind string, gen uint64) string {
	return filepath.Join(s.dir, kind+"."+strconv.FormatUint(gen, 10))
}

// load reads the newest generation whose snapshot is readable, then its
// journal, and returns its records.
func (s *Store) load() (map[string][]byte, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("state: read %s: %w", s.dir, err)
	}
	var snaps []uint64
	for _, e := range ents {
		if g, ok := fileGen(e.Name(), KindSnapshot); ok {
			snaps = append(snaps, g)
		}
	}
	slices.Sort(snaps)
	for i := len(snaps) - 1; i >= 0; i-- {
		g := snaps[i]
		live, err := s.readFile(KindSnapshot, g)
		if err != nil {
			var v *versionError
			if errors.As(err, &v) {
				return nil, err
			}
			s.log.Error("skipping an unreadable state snapshot", "file", s.path(KindSnapshot, g), "err", err)
			continue
		}
		s.gen = g
		return s.readJournal(g, live, -1)
	}
	if len(snaps) > 0 {
		return nil, fmt.Errorf("state: no readable snapshot in %s (see the errors above); move the directory aside to start empty", s.dir)
	}
	return map[string][]byte{}, nil // a new directory
}

// readJournal applies journal.gen, if any, to live: its first limit bytes,
// or all of it when limit < 0.
func (s *Store) readJournal(gen uint64, live map[string][]byte, limit int64) (map[string][]byte, error) {
	f, err := os.Open(s.path(KindJournal, gen))
	if errors.Is(err, os.ErrNotExist) {
		return live, nil // the crash came between the snapshot and its journal
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	var hdr *Header
	st, err := ReadEntries(r, func(e Entry) error {
		switch {
		case e.Header != nil && hdr == nil:
			hdr = e.Header
			return checkHeader(hdr, KindJournal, gen)
		case e.Header != nil:
			return nil
		case hdr == nil:
			return fmt.Errorf("state: %s: entries before the header", f.Name())
		case e.Delete:
			delete(live, e.ID)
		case e.Record != nil:
			live[e.ID] = e.Record
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state: read %s: %w", f.Name(), err)
	}
	if st.Bad > 0 || st.Torn {
		s.log.Warn("the state journal had damaged lines (a crash mid-write leaves one); they were skipped",
			"file", f.Name(), "bad", st.Bad, "torn_tail", st.Torn)
	}
	return live, nil
}

// readFile reads a snapshot into a new map.
func (s *Store) readFile(kind string, gen uint64) (map[string][]byte, error) {
	f, err := os.Open(s.path(kind, gen))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	live := map[string][]byte{}
	var hdr *Header
	st, err := ReadEntries(f, func(e Entry) error {
		switch {
		case e.Header != nil && hdr == nil:
			hdr = e.Header
			return checkHeader(hdr, kind, gen)
		case hdr == nil:
			return errors.New("entries before the header")
		case e.Record != nil && !e.Delete:
			live[e.ID] = e.Record
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if hdr == nil {
		return nil, errors.New("no header")
	}
	if st.Bad > 0 || st.Torn || len(live) != hdr.Count {
		s.log.Error("a state snapshot is damaged: using the records that read back",
			"file", f.Name(), "records", len(live), "want", hdr.Count, "bad", st.Bad)
	}
	return live, nil
}

// versionError is a file from a newer (or unknown) format.
type versionError struct{ h Header }

func (e *versionError) Error() string {
	return fmt.Sprintf("state: the state directory was written by a newer orphand (%s version %d; this one reads version %d): upgrade, or move the directory aside",
		e.h.Format, e.h.Version, Version)
}

func checkHeader(h *Header, kind string, gen uint64) error {
	switch {
	case h.Format != Format || h.Version > Version || h.Version < 1:
		return &versionError{*h}
	case h.Kind != kind || h.Gen != gen:
		return fmt.Errorf("header says %s %d, want %s %d", h.Kind, h.Gen, kind, gen)
	}
	return nil
}
