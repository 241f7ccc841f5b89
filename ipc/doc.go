// Package ipc is orphand's agent protocol, version 1, and its Go client.
//
// The agent listens on a Unix stream socket: the system agent's
// [DefaultSocket], or a per-user agent's [UserSocket]. Clients find one with
// [FindSocket] ($ORPHAND_SOCKET, else the caller's own per-user agent's
// socket if it exists, else the system's), as [Dial] does for an empty path. Each request and each response is one
// JSON object on one line; a request line is at most [MaxLine] bytes. A request names an
// "op" and may carry an "id", which the response echoes. A response is
// {"ok":true,...} or {"ok":false,"error":{"code":...,"message":...}}.
// Unknown fields are ignored, so both sides can grow. Responses may be longer
// than MaxLine (a list of many groups). docs/protocol.md describes every op
// for clients in other languages.
package ipc
