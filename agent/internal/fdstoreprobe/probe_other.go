//go:build !linux

package fdstoreprobe

import (
	"context"
	"errors"
)

// Max fails: the systemd fd store exists only on Linux.
func Max(context.Context) (int, string, error) {
	return 0, "", errors.New("the systemd fd store exists only on Linux")
}
