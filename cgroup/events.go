package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Events is the content of a cgroup's cgroup.events file.
type Events struct {
	// Populated: the cgroup or one of its descendants has a live process.
	// Zombies do not count: "populated 0" can arrive before they are reaped.
	Populated bool
	// Frozen: the cgroup and all its descendants are frozen.
	Frozen bool
}

// ParseEvents reads a cgroup.events file ("key value" lines). Unknown keys
// are ignored; a missing "frozen" key (kernels before 5.2) reads as false.
func ParseEvents(r io.Reader) (Events, error) {
	var ev Events
	seen := false
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(" "))
		if !ok {
			continue
		}
		var dst *bool
		switch string(key) {
		case "populated":
			dst, seen = &ev.Populated, true
		case "frozen":
			dst = &ev.Frozen
		default:
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 8)
		if err != nil || n > 1 {
			return Events{}, fmt.Errorf("cgroup: cgroup.events: bad value in %q", truncate(sc.Text()))
		}
		*dst = n == 1
	}
	if err := sc.Err(); err != nil {
		return Events{}, fmt.Errorf("cgroup: read cgroup.events: %w", err)
	}
	if !seen {
		return Events{}, fmt.Errorf("cgroup: cgroup.events has no populated line")
	}
	return ev, nil
}
