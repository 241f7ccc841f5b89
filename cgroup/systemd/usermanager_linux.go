package systemd

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

// A per-user agent talks to the user's own service manager (systemd --user,
// the process of user@UID.service), whose delegated cgroup subtree the user
// owns: its scopes are that manager's units, the user may write their
// cgroups, and the manager moves a process from outside its subtree (an
// ssh session's scope, say) by asking the system manager, which lets a
// user move its own processes into its own manager's units.
//
// The manager answers in two places, tried in order:
//
//  1. the user bus: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus,
//     where dbus-user-session's socket listens (what systemctl --user and
//     systemd-run --user reach); a bus is never launched (no dbus-launch,
//     which would leave a bus daemon behind);
//  2. the manager's private socket, $XDG_RUNTIME_DIR/systemd/private,
//     which needs no bus daemon: a peer-to-peer connection, without Hello.

// userEndpoint is one place the user's manager may answer.
type userEndpoint struct {
	what    string // for messages: "the user bus unix:path=..."
	address string // a D-Bus address
	hello   bool   // a bus (Hello after the authentication), not a peer
}

// userEndpoints lists where to look for the user's manager, in order.
func userEndpoints() []userEndpoint {
	var eps []userEndpoint
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(runtime) {
		runtime = "/run/user/" + strconv.Itoa(os.Geteuid())
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		eps = append(eps, userEndpoint{what: "the user bus " + a, address: a, hello: true})
	} else {
		p := filepath.Join(runtime, "bus")
		eps = append(eps, userEndpoint{what: "the user bus " + p, address: "unix:path=" + dbus.EscapeBusAddressValue(p), hello: true})
	}
	p := filepath.Join(runtime, "systemd", "private")
	return append(eps, userEndpoint{what: "the user manager's private socket " + p, address: "unix:path=" + dbus.EscapeBusAddressValue(p)})
}

// dialUserManager connects to the user's service manager at the first
// endpoint where it answers, and returns the connection and the endpoint.
func dialUserManager(ctx context.Context) (*sdbus.Conn, userEndpoint, error) {
	var errs []error
	for _, ep := range userEndpoints() {
		conn, err := sdbus.NewConnection(func() (*dbus.Conn, error) { return dialEndpoint(ctx, ep) })
		if err == nil {
			if _, err = conn.GetManagerProperty("Version"); err == nil {
				return conn, ep, nil
			}
			conn.Close()
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep.what, err))
	}
	return nil, userEndpoint{}, errors.Join(errs...)
}

// dialEndpoint opens one authenticated connection (EXTERNAL, by uid).
func dialEndpoint(ctx context.Context, ep userEndpoint) (*dbus.Conn, error) {
	conn, err := dbus.Dial(ep.address, dbus.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	if ep.hello {
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// managerCgroup reads the cgroup of the manager's own subtree, relative to
// the cgroup2 mount ("/user.slice/user-1000.slice/user@1000.service").
func managerCgroup(conn *sdbus.Conn) (string, error) {
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
