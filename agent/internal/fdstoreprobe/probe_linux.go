// Package fdstoreprobe finds out how many file descriptors systemd keeps
// for the unit this process runs in (FileDescriptorStoreMax=, the fd
// store's size; systemd.service(5)): from $FDSTORE where systemd sets it
// (254 and later), else by asking systemd over D-Bus. The agent asks it
// once, at start, before it hands pidfds to the store. It knows nothing of
// groups.
package fdstoreprobe

import (
	"context"
	"fmt"
	"os"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/orphand/orphand/internal/sdfdstore"
)

// Max finds the unit's FileDescriptorStoreMax=: from $FDSTORE (systemd
// 254 and later set it), else by asking systemd over D-Bus about the unit
// this process runs in (systemd 252 sets no variable). source says where
// the answer came from: "$FDSTORE" or the unit's name.
func Max(ctx context.Context) (max int, source string, err error) {
	if n, ok := sdfdstore.EnvMax(); ok {
		return n, "$FDSTORE", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()
	unit, err := conn.GetUnitNameByPID(ctx, uint32(os.Getpid()))
	if err != nil {
		return 0, "", fmt.Errorf("find this process's unit: %w", err)
	}
	p, err := conn.GetServicePropertyContext(ctx, unit, "FileDescriptorStoreMax")
	if err != nil {
		return 0, unit, fmt.Errorf("read %s's FileDescriptorStoreMax: %w", unit, err)
	}
	v, ok := p.Value.Value().(uint32)
	if !ok {
		return 0, unit, fmt.Errorf("%s's FileDescriptorStoreMax is a %T", unit, p.Value.Value())
	}
	return int(v), unit, nil
}
