package proctree

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// credSnapshot is the part of a process's credentials whose change makes the
// kernel clear the parent-death signal (commit_creds in kernel/cred.c).
type credSnapshot struct {
	ok           bool // false when the snapshot could not be read
	euid, fsuid  uint64
	egid, fsgid  uint64
	capPermitted uint64
}

// clears reports whether going from old to c made the kernel clear the
// parent-death signal: a changed effective or filesystem uid or gid, or a
// permitted capability gained.
func (c credSnapshot) clears(old credSnapshot) bool {
	if !c.ok || !old.ok {
		return false
	}
	return c.euid != old.euid || c.fsuid != old.fsuid || c.egid != old.egid ||
		c.fsgid != old.fsgid || c.capPermitted&^old.capPermitted != 0
}

// errBadStatus is wrapped by every error parseCreds returns for malformed
// input.
var errBadStatus = errors.New("malformed /proc/<pid>/status")

// parseCreds reads the Uid:, Gid: and CapPrm: lines of /proc/<pid>/status.
func parseCreds(r io.Reader) (credSnapshot, error) {
	var c credSnapshot
	var have int
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(val)
		switch string(key) {
		case "Uid", "Gid":
			// real, effective, saved, filesystem
			if len(f) != 4 {
				return credSnapshot{}, fmt.Errorf("%w: %s has %d fields", errBadStatus, key, len(f))
			}
			e, err1 := strconv.ParseUint(string(f[1]), 10, 32)
			fs, err2 := strconv.ParseUint(string(f[3]), 10, 32)
			if err := errors.Join(err1, err2); err != nil {
				return credSnapshot{}, fmt.Errorf("%w: %s: %w", errBadStatus, key, err)
			}
			if key[0] == 'U' {
				c.euid, c.fsuid = e, fs
				have |= 1
			} else {
				c.egid, c.fsgid = e, fs
				have |= 2
			}
		case "CapPrm":
			if len(f) != 1 {
				return credSnapshot{}, fmt.Errorf("%w: CapPrm has %d fields", errBadStatus, len(f))
			}
			v, err := strconv.ParseUint(string(f[0]), 16, 64)
			if err != nil {
				return credSnapshot{}, fmt.Errorf("%w: CapPrm: %w", errBadStatus, err)
			}
			c.capPermitted = v
			have |= 4
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return credSnapshot{}, fmt.Errorf("%w: %w", errBadStatus, err)
		}
		return credSnapshot{}, err
	}
	if have != 7 {
		return credSnapshot{}, fmt.Errorf("%w: Uid, Gid or CapPrm missing", errBadStatus)
	}
	c.ok = true
	return c, nil
}
