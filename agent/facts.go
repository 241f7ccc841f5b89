package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"

	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

// peer is who is at the other end of a connection.
type peer struct {
	caller policy.Caller
	// proc holds the connecting process, nil when the agent cannot see it
	// (another pid namespace) or it is already gone.
	proc *proctree.Process
	// sameNS is true when the peer shares the agent's pid namespace, so
	// that pid numbers in its requests mean what they mean to the agent.
	sameNS bool
}

// hostFacts is what New probed about the agent's own process.
type hostFacts struct {
	pid       int
	pidNS     string // readlink /proc/self/ns/pid
	nsLevels  int    // entries of the agent's own NSpid: line (1: /proc is its namespace's)
	peerPidfd bool   // SO_PEERPIDFD works
}

// uids is the Uid: line of /proc/<pid>/status.
type uids struct {
	Real, Effective, Saved, FS uint32
}

// parseStatusNSpid returns how many pid namespaces the NSpid: line of a
// /proc/<pid>/status file lists: 1 for a process in the namespace of the
// /proc mount, one more for each level it is nested below it.
func parseStatusNSpid(r io.Reader) (int, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("NSpid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("status NSpid: line is empty")
		}
		for i := range f {
			if _, err := strconv.ParseUint(string(f[i]), 10, 32); err != nil {
				return 0, fmt.Errorf("status NSpid: field %d: %w", i+1, err)
			}
		}
		return len(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	return 0, fmt.Errorf("status has no NSpid: line (Linux 4.1 or later has it)")
}

// parseStatusUIDs reads the Uid: line of a /proc/<pid>/status file.
func parseStatusUIDs(r io.Reader) (uids, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 4 {
			return uids{}, fmt.Errorf("status Uid: line has %d fields, want 4", len(f))
		}
		var v [4]uint32
		for i := range f {
			n, err := strconv.ParseUint(string(f[i]), 10, 32)
			if err != nil {
				return uids{}, fmt.Errorf("status Uid: field %d: %w", i+1, err)
			}
			v[i] = uint32(n)
		}
		return uids{Real: v[0], Effective: v[1], Saved: v[2], FS: v[3]}, nil
	}
	if err := sc.Err(); err != nil {
		return uids{}, fmt.Errorf("read status: %w", err)
	}
	return uids{}, fmt.Errorf("status has no Uid: line")
}
