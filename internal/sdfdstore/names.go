package sdfdstore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrNoSocket means $NOTIFY_SOCKET is not set: there is no systemd to talk to.
var ErrNoSocket = errors.New("no notify socket")

// MaxNameLen is the longest descriptor name systemd accepts (FDNAME_MAX).
const MaxNameLen = 255

// ValidName checks that name can name a stored descriptor: 1 to
// MaxNameLen bytes of printable ASCII without spaces, ':' (the separator
// of $LISTEN_FDNAMES) or '\'. systemd is slightly more lenient; these
// names also survive the newline-separated notify message unchanged.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("sdfdstore: descriptor name %.40q: must be 1 to %d bytes", name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '\\' {
			return fmt.Errorf("sdfdstore: descriptor name %.40q: byte %#x is not allowed (printable ASCII, no space, ':' or '\\')", name, c)
		}
	}
	return nil
}

// EnvMax reports the store's size from $FDSTORE, which systemd 254 and
// later set to the unit's FileDescriptorStoreMax= when it is above zero.
// ok is false when the variable is absent: an older systemd, or no store.
func EnvMax() (n int, ok bool) {
	v, set := os.LookupEnv("FDSTORE")
	if !set {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
