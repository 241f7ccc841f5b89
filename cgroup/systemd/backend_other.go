//go:build !linux

package systemd

import (
	"context"
	"fmt"

	"github.com/orphand/orphand/cgroup"
)

// Backend is the systemd backend; it exists only on Linux.
type Backend struct{ cgroup.Backend }

// Open fails: cgroups exist only on Linux.
func Open(context.Context, Config) (*Backend, error) {
	return nil, fmt.Errorf("%w: systemd: cgroups exist only on Linux", cgroup.ErrUnavailable)
}
