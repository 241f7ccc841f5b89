//go:build !linux

package usage

import "errors"

// Read fails: cgroups exist on Linux only (containerd/cgroups' cgroup2
// package does not build elsewhere).
func (r *Reader) Read(string) (Usage, error) {
	return Usage{}, errors.New("usage: cgroups exist on Linux only")
}
