// Package usercheck says what a per-user agent (orphand serve run by an
// ordinary user; docs/user.md) has to work with on this host, for the
// user who asks: where its socket, state and configuration go, whether
// that user's systemd manager answers, and whether it lingers. It is the
// per-user section of `orphand check`: its Items have the fields of
// internal/hostcheck's (a conversion, hostcheck.Item(it), takes one to the
// other), and the backend a per-user agent would pick is hostcheck's
// agent section run with cgroup/auto's Config.User.
//
// Run changes nothing on the host; it connects to the user's manager and
// disconnects.
package usercheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/orphand/orphand/agent/config"
	"github.com/orphand/orphand/cgroup/auto"
	"github.com/orphand/orphand/internal/sdmanager"
	"github.com/orphand/orphand/ipc"
)

// Status of an item, as internal/hostcheck names them.
const (
	StatusOK       = "ok"       // present, used
	StatusFallback = "fallback" // missing; the agent does without it
	StatusMissing  = "missing"  // missing and required: the agent cannot run
	StatusInfo     = "info"     // a fact, neither good nor bad
)

// Item is one line of the section (internal/hostcheck.Item's fields).
type Item struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

// Report is what Run found.
type Report struct {
	Title    string   `json:"title"`
	Items    []Item   `json:"items"`
	Problems []string `json:"problems,omitempty"` // what stops a per-user agent here, with the fix
}

// probeTimeout bounds the connection to the user's manager.
const probeTimeout = 10 * time.Second

// Run looks at what a per-user agent of the calling user would use.
func Run(ctx context.Context) *Report {
	r := &Report{Title: "A per-user agent (uid " + strconv.Itoa(os.Geteuid()) + ")"}
	r.paths()
	if auto.SystemdBooted() {
		r.manager(ctx)
		r.linger()
	} else {
		r.add(Item{Name: "user manager", Value: "none", Status: StatusInfo, Note: "systemd is not PID 1: a cgroup delegated to you, else the proc backend"})
	}
	return r
}

func (r *Report) add(it Item) { r.Items = append(r.Items, it) }

// paths: the runtime directory (the socket's), the socket, the state and
// the configuration file.
func (r *Report) paths() {
	rt := ipc.RuntimeDir()
	switch err := ownDir(rt); {
	case err != nil:
		r.add(Item{Name: "runtime directory", Value: rt, Status: StatusMissing, Note: err.Error()})
		r.Problems = append(r.Problems, fmt.Sprintf("the runtime directory %s: %v (log in through PAM with pam_systemd, set XDG_RUNTIME_DIR, or give orphand serve --socket)", rt, err))
	default:
		r.add(Item{Name: "runtime directory", Value: rt, Status: StatusOK})
	}
	sock := ipc.UserSocket()
	if fi, err := os.Lstat(sock); err == nil && fi.Mode().Type() == os.ModeSocket {
		r.add(Item{Name: "socket", Value: sock, Status: StatusOK, Note: "exists: clients use it"})
	} else {
		r.add(Item{Name: "socket", Value: sock, Status: StatusInfo, Note: "not there yet: systemctl --user enable --now orphand.socket, or orphand serve"})
	}
	if f, err := config.UserDefault(); err == nil {
		r.add(Item{Name: "state", Value: f.StateDir, Status: StatusInfo})
	} else {
		r.add(Item{Name: "state", Value: "unknown", Status: StatusMissing, Note: err.Error()})
		r.Problems = append(r.Problems, err.Error())
	}
	if p, err := config.UserPath(); err == nil {
		note := "absent: the defaults apply"
		if _, serr := os.Stat(p); serr == nil {
			note = "read at start"
		}
		r.add(Item{Name: "configuration", Value: p, Status: StatusInfo, Note: note})
	}
}

// ownDir checks that dir is a directory of the caller's.
func ownDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return errors.New("not a directory of yours")
	}
	return nil
}

// manager: whether the user's own systemd manager answers, and where.
func (r *Report) manager(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, ep, err := sdmanager.DialUser(ctx)
	if err != nil {
		r.add(Item{
			Name: "user manager", Value: "unreachable", Status: StatusFallback,
			Note: "no scopes of your own: is user@" + strconv.Itoa(os.Geteuid()) + ".service running? (" + err.Error() + ")",
		})
		return
	}
	defer conn.Close()
	cg, err := sdmanager.ManagerCgroup(conn)
	if err != nil {
		r.add(Item{Name: "user manager", Value: "answers, without a cgroup", Status: StatusFallback, Note: err.Error()})
		return
	}
	r.add(Item{Name: "user manager", Value: "answers on " + ep.What, Status: StatusOK, Note: "groups become scopes under " + cg})
}

// linger: a manager without lingering stops, with the agent and its
// groups, when the user's last session ends.
func (r *Report) linger() {
	u, err := user.Current()
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join("/var/lib/systemd/linger", u.Username)); err == nil {
		r.add(Item{Name: "lingering", Value: "yes", Status: StatusOK, Note: "your manager runs without a session"})
		return
	}
	r.add(Item{
		Name: "lingering", Value: "no", Status: StatusInfo,
		Note: "your manager, the agent and its groups stop with your last session; a service account needs loginctl enable-linger " + u.Username,
	})
}
