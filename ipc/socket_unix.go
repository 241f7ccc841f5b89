//go:build unix

package ipc

import (
	"os"
	"syscall"
)

// ownedByMe reports whether the file belongs to the caller's effective uid.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
