package sdfdstore

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNotifyConcurrent sends from many goroutines at once; under -race it
// catches state shared between concurrent Sendmsg calls.
func TestNotifyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	rfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	if err := unix.Bind(rfd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	n, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const senders, each = 8, 20
	got := make(chan error, 1)
	go func() { // drain as they come: a datagram queue holds only a few
		buf := make([]byte, 64)
		for range senders * each {
			m, _, err := unix.Recvfrom(rfd, buf, 0)
			if err == nil && string(buf[:m]) != "WATCHDOG=1" {
				err = fmt.Errorf("received %q", buf[:m])
			}
			if err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for range each {
				if err := n.Notify("WATCHDOG=1"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
