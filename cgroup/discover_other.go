//go:build !linux

package cgroup

import "fmt"

// Discover finds the cgroup2 mount; cgroups exist only on Linux.
func Discover() (Mount, error) {
	return Mount{Layout: LayoutNone}, fmt.Errorf("%w: cgroups exist only on Linux", ErrUnavailable)
}
