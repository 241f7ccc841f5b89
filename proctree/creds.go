package proctree

import "io"

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

// parseCreds reads the credentials a snapshot holds from a
// /proc/<pid>/status file.
func parseCreds(r io.Reader) (credSnapshot, error) {
	st, err := ParseStatus(r)
	if err != nil {
		return credSnapshot{}, err
	}
	return credsOf(st)
}

// credsOf takes a snapshot from a status's Uid:, Gid: and CapPrm: lines.
func credsOf(st Status) (credSnapshot, error) {
	if err := st.Need(StatusUID | StatusGID | StatusCapPrm); err != nil {
		return credSnapshot{}, err
	}
	return credSnapshot{
		ok:   true,
		euid: uint64(st.UID.Effective), fsuid: uint64(st.UID.FS),
		egid: uint64(st.GID.Effective), fsgid: uint64(st.GID.FS),
		capPermitted: st.CapPrm,
	}, nil
}
