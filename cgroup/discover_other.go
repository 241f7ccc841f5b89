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
