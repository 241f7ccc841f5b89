// Package ipc is orphand's agent protocol, version 1, and its Go client.
//
// The agent listens on a Unix stream socket (default [DefaultSocket];
// clients honour $ORPHAND_SOCKET). Each request and each response is one
// JSON object on one line of at most [MaxLine] bytes. A request names an
// "op" and may carry an "id", which the response echoes. A response is
// {"ok":true,...} or {"ok":false,"error":{"code":...,"message":...}}.
// Unknown fields are ignored, so both sides can grow.
package ipc
