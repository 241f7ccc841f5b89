//go:build !linux

package agent

import (
	"context"
	"errors"
)

func probeFDStoreMax(context.Context) (int, string, error) {
	return 0, "", errors.New("the systemd fd store exists only on Linux")
}
