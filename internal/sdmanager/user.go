// Package sdmanager connects to a systemd service manager over D-Bus
// (org.freedesktop.systemd1(5)): the system's over the system bus, or a
// user's own manager — systemd --user, the process of user@UID.service —
// which a per-user agent talks to. It knows nothing of groups.
//
// A user's manager answers in two places, tried in order:
//
//  1. the user bus: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus,
//     where dbus-user-session's socket listens (what systemctl --user and
//     systemd-run --user reach); a bus is never launched (no dbus-launch,
//     which godbus's session bus helpers run when they find none, and
//     which would leave a bus daemon behind);
//  2. the manager's private socket, $XDG_RUNTIME_DIR/systemd/private,
//     which needs no bus daemon: a peer-to-peer connection, without Hello
//     (systemd sends its signals, job results included, to every such
//     connection).
//
// go-systemd's dbus package does the rest.
package sdmanager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Endpoint is one place a user's manager may answer.
type Endpoint struct {
	What    string // for messages: "the user bus unix:path=..."
	Address string // a D-Bus address
	Hello   bool   // a bus (Hello after the authentication), not a peer
}

// UserEndpoints lists where to look for the user's manager, in order.
func UserEndpoints() []Endpoint {
	var eps []Endpoint
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(runtime) {
		runtime = "/run/user/" + strconv.Itoa(os.Geteuid())
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		eps = append(eps, Endpoint{What: "the user bus " + a, Address: a, Hello: true})
	} else {
		p := filepath.Join(runtime, "bus")
		eps = append(eps, Endpoint{What: "the user bus " + p, Address: "unix:path=" + dbus.EscapeBusAddressValue(p), Hello: true})
	}
	p := filepath.Join(runtime, "systemd", "private")
	return append(eps, Endpoint{What: "the user manager's private socket " + p, Address: "unix:path=" + dbus.EscapeBusAddressValue(p)})
}

// DialUser connects to the user's own service manager at the first
// endpoint where it answers (its Version property is read), and returns
// the connection and the endpoint.
func DialUser(ctx context.Context) (*sdbus.Conn, Endpoint, error) {
	var errs []error
	for _, ep := range UserEndpoints() {
		conn, err := sdbus.NewConnection(func() (*dbus.Conn, error) { return dialEndpoint(ctx, ep) })
		if err == nil {
			if _, err = conn.GetManagerProperty("Version"); err == nil {
				return conn, ep, nil
			}
			conn.Close()
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep.What, err))
	}
	return nil, Endpoint{}, errors.Join(errs...)
}

// dialEndpoint opens one authenticated connection (EXTERNAL, by uid).
func dialEndpoint(ctx context.Context, ep Endpoint) (*dbus.Conn, error) {
	conn, err := dbus.Dial(ep.Address, dbus.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if ep.Hello {
		if err := conn.Hello(); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// ManagerCgroup reads the cgroup of the manager's own subtree, relative to
// the cgroup2 mount ("/user.slice/user-1000.slice/user@1000.service"; "/"
// for the system's).
func ManagerCgroup(conn *sdbus.Conn) (string, error) {
	v, err := conn.GetManagerProperty("ControlGroup")
	if err != nil {
		return "", err
	}
	p, err := strconv.Unquote(v) // the GVariant text form of a string
	if err != nil || !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("the manager's ControlGroup %s is not a cgroup path", v)
	}
	return p, nil
}
