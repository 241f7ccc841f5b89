package ipc

import (
	"os"
	"path/filepath"
	"strconv"
)

// A host may run two kinds of agent: the system agent (root, at
// [DefaultSocket], serving every user) and per-user agents, each run by one
// user for that user's processes only, at [UserSocket]
// ($XDG_RUNTIME_DIR/orphand/orphand.sock). A client finds one with
// [FindSocket], in the order systemctl users expect: what the caller named,
// else $ORPHAND_SOCKET, else the caller's own per-user agent if its socket
// exists, else the system agent.

// Scope says which agent a client wants, as systemctl's --user and
// --system do.
type Scope int

const (
	// ScopeAuto: $ORPHAND_SOCKET, else the per-user agent's socket if it
	// exists and belongs to the caller, else the system agent's.
	ScopeAuto Scope = iota
	// ScopeUser: the caller's per-user agent ([UserSocket]).
	ScopeUser
	// ScopeSystem: the system agent ([DefaultSocket]).
	ScopeSystem
)

// UserSocketName is the per-user agent's socket, relative to the user's
// runtime directory ($XDG_RUNTIME_DIR).
const UserSocketName = "orphand/orphand.sock"

// Socket is the socket a client chose, and why.
type Socket struct {
	Path string
	// User is true for a per-user agent's socket ([UserSocket]).
	User bool
	// Why says in words why this socket was chosen ("$ORPHAND_SOCKET is
	// set"), for orphanctl -v.
	Why string
}

// FindSocket chooses the agent's socket for scope. With ScopeAuto the
// order is $ORPHAND_SOCKET, then the caller's per-user agent if its socket
// exists and is the caller's own (a socket of another uid, reached through
// an inherited $XDG_RUNTIME_DIR, is skipped: that agent would refuse the
// caller), then the system agent. ScopeUser and ScopeSystem return their
// socket whether or not it exists, so that the connection's error says
// what is missing.
func FindSocket(scope Scope) Socket {
	user := UserSocket()
	switch scope {
	case ScopeUser:
		return Socket{Path: user, User: true, Why: "--user: the per-user agent"}
	case ScopeSystem:
		return Socket{Path: DefaultSocket, Why: "--system: the system agent"}
	}
	if p := os.Getenv(SocketEnv); p != "" {
		return Socket{Path: p, User: p == user, Why: "$" + SocketEnv + " is set"}
	}
	if fi, err := os.Lstat(user); err == nil && fi.Mode().Type() == os.ModeSocket && ownedByMe(fi) {
		return Socket{Path: user, User: true, Why: "your per-user agent's socket exists; --system picks the system agent"}
	}
	return Socket{Path: DefaultSocket, Why: "no per-user agent socket at " + user + ": the system agent"}
}

// UserSocket is the per-user agent's socket: UserSocketName in the runtime
// directory, $XDG_RUNTIME_DIR, or /run/user/<euid> where the variable is
// unset or not an absolute path (as in a cron job or under sudo), which is
// where systemd puts every user's runtime directory.
func UserSocket() string {
	return filepath.Join(RuntimeDir(), UserSocketName)
}

// RuntimeDir is the caller's runtime directory: $XDG_RUNTIME_DIR when it is
// an absolute path, else /run/user/<euid>.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		return filepath.Clean(d)
	}
	return "/run/user/" + strconv.Itoa(os.Geteuid())
}
