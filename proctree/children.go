package proctree

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrBadChildren is wrapped by every error parseChildren returns for
// malformed input.
var ErrBadChildren = errors.New("malformed /proc/<pid>/task/<tid>/children")

// maxChildrenLen bounds what parseChildren reads: pid_max is at most 2^22,
// so even every possible pid (7 digits and a space each) fits.
const maxChildrenLen = 8 << 20

// parseChildren parses /proc/<pid>/task/<tid>/children: the pids of the
// thread's children, separated by spaces (the kernel ends the list with a
// space, not a newline). It calls add for each pid in order.
func parseChildren(r io.Reader, add func(pid int)) error {
	sc := bufio.NewScanner(io.LimitReader(r, maxChildrenLen))
	sc.Buffer(make([]byte, 0, 64), 64)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		pid, err := strconv.Atoi(sc.Text())
		if err != nil || pid <= 0 {
			return fmt.Errorf("%w: %q is not a pid", ErrBadChildren, sc.Text())
		}
		add(pid)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: %w", ErrBadChildren, err)
		}
		return err
	}
	return nil
}
