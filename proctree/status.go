package proctree

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strconv"
)

// Status holds the lines of /proc/<pid>/status (proc_pid_status(5)) that
// orphand reads. A line the kernel did not write leaves its field zero;
// [Status.Need] says whether the lines a caller relies on were there.
type Status struct {
	UID, GID IDs    // Uid:, Gid:
	CapPrm   uint64 // CapPrm: the permitted capabilities
	// NSpid is the process's pid in each pid namespace it belongs to, from
	// that of the /proc mount inward: one entry for a process of /proc's
	// own namespace, one more for each nested level (NSpid:, Linux 4.1+).
	NSpid []int

	has  StatusField   // lines read
	errs [4]fieldError // a malformed line, by field
}

// fieldError is why one line of a status could not be read.
type fieldError struct {
	field StatusField
	err   error
}

// IDs are the four user or group ids of a Uid: or Gid: line.
type IDs struct {
	Real, Effective, Saved, FS uint32
}

// StatusField names lines of /proc/<pid>/status, for [Status.Need].
type StatusField uint8

// The lines [ParseStatus] reads.
const (
	StatusUID StatusField = 1 << iota
	StatusGID
	StatusCapPrm
	StatusNSpid
)

// ErrBadStatus is wrapped by every error ParseStatus and Need return for
// malformed or incomplete input.
var ErrBadStatus = errors.New("malformed /proc/<pid>/status")

// Need returns an error wrapping [ErrBadStatus] when one of fields was
// missing from the status read, or malformed.
func (s Status) Need(fields StatusField) error {
	for _, e := range s.errs {
		if e.err != nil && fields&e.field != 0 {
			return e.err
		}
	}
	for _, f := range []struct {
		field StatusField
		line  string
	}{{StatusUID, "Uid:"}, {StatusGID, "Gid:"}, {StatusCapPrm, "CapPrm:"}, {StatusNSpid, "NSpid: (Linux 4.1 or later has it)"}} {
		if fields&f.field != 0 && s.has&f.field == 0 {
			return fmt.Errorf("%w: no %s line", ErrBadStatus, f.line)
		}
	}
	return nil
}

// ParseStatus reads the Uid:, Gid:, CapPrm: and NSpid: lines of a
// /proc/<pid>/status file; other lines are skipped. A malformed line among
// them makes only that field unusable: [Status.Need] reports it, so that a
// reader of one line does not depend on the others. It reads at most
// 64 KiB, and fails only when the input cannot be read.
func ParseStatus(r io.Reader) (Status, error) {
	var s Status
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(val)
		var (
			field StatusField
			err   error
		)
		switch string(key) {
		case "Uid":
			field = StatusUID
			s.UID, err = parseIDs(f)
		case "Gid":
			field = StatusGID
			s.GID, err = parseIDs(f)
		case "CapPrm":
			field = StatusCapPrm
			if len(f) != 1 {
				err = fmt.Errorf("%d fields, want 1", len(f))
				break
			}
			s.CapPrm, err = strconv.ParseUint(string(f[0]), 16, 64)
		case "NSpid":
			field = StatusNSpid
			s.NSpid, err = parsePids(f)
		default:
			continue
		}
		s.has |= field
		if err != nil {
			s.errs[bits.TrailingZeros8(uint8(field))] = fieldError{field, fmt.Errorf("%w: %s: %w", ErrBadStatus, key, err)}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Status{}, fmt.Errorf("%w: %w", ErrBadStatus, err)
		}
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	return s, nil
}

// parseIDs reads "real effective saved filesystem".
func parseIDs(f [][]byte) (IDs, error) {
	if len(f) != 4 {
		return IDs{}, fmt.Errorf("%d fields, want 4", len(f))
	}
	var v [4]uint32
	for i := range f {
		n, err := strconv.ParseUint(string(f[i]), 10, 32)
		if err != nil {
			return IDs{}, fmt.Errorf("field %d: %w", i+1, err)
		}
		v[i] = uint32(n)
	}
	return IDs{Real: v[0], Effective: v[1], Saved: v[2], FS: v[3]}, nil
}

// parsePids reads a non-empty list of pids.
func parsePids(f [][]byte) ([]int, error) {
	if len(f) == 0 {
		return nil, errors.New("empty")
	}
	pids := make([]int, len(f))
	for i := range f {
		n, err := strconv.ParseUint(string(f[i]), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("field %d: %w", i+1, err)
		}
		pids[i] = int(n)
	}
	return pids, nil
}
