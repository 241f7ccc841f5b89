package proctree

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// parsePidfdInfo returns the value of the "Pid:" line of a pidfd's
// /proc/self/fdinfo/<fd>: the pid in the reader's namespace, 0 when the
// process is outside it, -1 when it has been reaped.
func parsePidfdInfo(r io.Reader) (int, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Pid:"))
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil {
			return 0, fmt.Errorf("fdinfo Pid: %w", err)
		}
		return pid, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("fdinfo has no Pid: line (not a pidfd?)")
}
