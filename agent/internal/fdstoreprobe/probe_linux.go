// Package fdstoreprobe finds out how many file descriptors systemd keeps
// for the unit this process runs in (FileDescriptorStoreMax=, the fd
// store's size; systemd.service(5)): from $FDSTORE where systemd sets it
// (254 and later), else by asking systemd over D-Bus — the system manager,
// or the user's own when the process runs under one (a per-user agent).
// The agent asks it once, at start, before it hands pidfds to the store.
// It knows nothing of groups.
package fdstoreprobe

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/orphand/orphand/internal/sdfdstore"
	"github.com/orphand/orphand/internal/sdmanager"
)

// Max finds the unit's FileDescriptorStoreMax=: from $FDSTORE (systemd
// 254 and later set it), else by asking systemd over D-Bus about the unit
// this process runs in (systemd 252 sets no variable). A process that the
// system manager places in user@UID.service runs under that user's own
// manager (a per-user agent): that manager is asked then. source says
// where the answer came from: "$FDSTORE" or the unit's name.
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
	if userManager(unit) {
		return userMax(ctx, unit)
	}
	return unitMax(ctx, conn, unit)
}

// userManager reports whether the system manager's unit is a user's
// manager (user@UID.service), whose units it does not know.
func userManager(unit string) bool {
	return strings.HasPrefix(unit, "user@") && strings.HasSuffix(unit, ".service")
}

// userMax asks the user's own manager, which runs as manager (the system's
// unit for it), about the unit this process runs in.
func userMax(ctx context.Context, manager string) (int, string, error) {
	conn, _, err := sdmanager.DialUser(ctx)
	if err != nil {
		return 0, manager, fmt.Errorf("this process runs under %s: connect to that user manager: %w", manager, err)
	}
	defer conn.Close()
	unit, err := conn.GetUnitNameByPID(ctx, uint32(os.Getpid()))
	if err != nil {
		return 0, manager, fmt.Errorf("find this process's unit in %s: %w", manager, err)
	}
	max, source, err := unitMax(ctx, conn, unit)
	return max, source + " (" + manager + ")", err
}

// unitMax reads the unit's FileDescriptorStoreMax= from its manager.
func unitMax(ctx context.Context, conn *sddbus.Conn, unit string) (int, string, error) {
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
