package family

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// parsePPid takes the ppid (field 4) from the text of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parsePPid(r io.Reader) (int, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4<<10)) // a stat line is well under 1 KiB
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, errors.New("malformed /proc stat: too few fields")
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat ppid: %w", err)
	}
	return ppid, nil
}
