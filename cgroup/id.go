package cgroup

import (
	"fmt"
	"strings"
)

// MaxIDLen is the longest group id backends accept.
const MaxIDLen = 64

// ValidateID checks that id is [a-z0-9][a-z0-9-]* of at most [MaxIDLen]
// bytes, so that it is safe as a cgroup directory name and inside a systemd
// unit name. The error wraps [ErrInvalidID].
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %q must be 1 to %d bytes", ErrInvalidID, truncate(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0
		if !ok {
			return fmt.Errorf("%w: %q: use only a-z, 0-9 and '-' (not first)", ErrInvalidID, truncate(id))
		}
	}
	return nil
}

// SplitPath splits a cgroup path relative to the cgroup2 mount ("/" or
// "/a/b") into its components, refusing anything that could name another
// place: empty components, ".", "..", NUL bytes and components longer than
// a file name may be. The root "/" gives no components.
func SplitPath(rel string) ([]string, error) {
	if !strings.HasPrefix(rel, "/") {
		return nil, fmt.Errorf("cgroup: path %q must start with /", truncate(rel))
	}
	if rel == "/" {
		return nil, nil
	}
	parts := strings.Split(rel[1:], "/")
	for _, p := range parts {
		switch {
		case p == "" || p == "." || p == "..":
			return nil, fmt.Errorf("cgroup: path %q: component %q is not allowed (the path must be clean)", truncate(rel), p)
		case strings.IndexByte(p, 0) >= 0:
			return nil, fmt.Errorf("cgroup: path %q contains a NUL byte", truncate(rel))
		case len(p) > 255:
			return nil, fmt.Errorf("cgroup: path %q: a component is longer than 255 bytes", truncate(rel))
		}
	}
	return parts, nil
}

// JoinPath appends a child name to a cgroup path relative to the mount.
func JoinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// truncate keeps hostile input short in error messages.
func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
