package nspawn

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/orphand/orphand/proctree"
)

// groupPrefix starts the name of every cgroup and control directory this
// package creates, so a later run can find those whose owner died.
const groupPrefix = "orphand-nspawn-"

// runID names everything one run creates. It embeds the owner's pid and
// start time, so a later process can tell that the owner died and clean up
// (sweepStale).
type runID struct {
	pid   int
	start uint64
	rand  string
}

func newRunID() (runID, error) {
	st, err := proctree.ReadStat(os.Getpid())
	if err != nil {
		return runID{}, fmt.Errorf("nspawn: read own start time: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return runID{pid: os.Getpid(), start: st.StartTime, rand: hex.EncodeToString(b[:])}, nil
}

// group is the name of the run's cgroups and control directory.
func (id runID) group() string {
	return fmt.Sprintf("%s%d-%d-%s", groupPrefix, id.pid, id.start, id.rand)
}

// machine is the container's name and hostname (at most 64 characters).
func (id runID) machine() string { return fmt.Sprintf("orphand-%d-%s", id.pid, id.rand) }

// parseGroupOwner returns the owner of a group name made by runID.group.
func parseGroupOwner(name string) (pid int, start uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, groupPrefix)
	if !ok {
		return 0, 0, false
	}
	f := strings.Split(rest, "-")
	if len(f) != 3 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	return pid, start, err1 == nil && err2 == nil && pid > 0
}
