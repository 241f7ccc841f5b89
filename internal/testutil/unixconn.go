package testutil

import (
	"net"
	"path/filepath"
	"testing"
)

// UnixConnPair returns both ends of a connection over a Unix stream socket
// in a temporary directory — the server's end first, the accepted one,
// whose peer credentials are the test process's. Both close when the test
// ends.
func UnixConnPair(t testing.TB) (server, client *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	client, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return server, client
}
