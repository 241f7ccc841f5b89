//go:build !linux

package cgroup

import "fmt"

// Discover finds the cgroup2 mount; cgroups exist only on Linux.
func Discover() (Mount, error) {
	return Mount{Layout: LayoutNone}, fmt.Errorf("%w: cgroups exist only on Linux", ErrUnavailable)
}

// ProcessCgroup reads a process's cgroup; cgroups exist only on Linux.
func ProcessCgroup(int) (string, error) {
	return "", fmt.Errorf("%w: cgroups exist only on Linux", ErrUnavailable)
}

// FreezerV1 is where a process sits in a cgroup v1 freezer hierarchy.
type FreezerV1 struct {
	Path  string
	State string
}

// ReadFreezerV1 finds nothing: cgroups exist only on Linux.
func ReadFreezerV1(int) (FreezerV1, error) { return FreezerV1{}, nil }
