package agent

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// dialAs connects to sock as uid, as far as the agent can tell:
// SO_PEERCRED records the credentials of the thread that called connect,
// and on Linux credentials belong to each thread (only libc's setuid
// changes all of them; the raw system call changes its caller). So the
// goroutine locks its thread, drops to uid keeping root as the saved uid,
// connects, and comes back. Should coming back fail, the goroutine ends
// still locked and Go retires the thread with it. Needs root.
func dialAs(t *testing.T, sock string, uid int) *client {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), 0); e != 0 {
		runtime.UnlockOSThread()
		unix.Close(fd)
		t.Fatalf("setresuid(%d) on this thread: %v", uid, e)
	}
	cerr := unix.Connect(fd, &unix.SockaddrUnix{Name: sock})
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, 0, 0, 0); e != 0 {
		t.Fatalf("back to root on this thread: %v", e) // the thread is retired
	}
	runtime.UnlockOSThread()
	if cerr != nil {
		unix.Close(fd)
		t.Fatalf("connect as uid %d: %v", uid, cerr)
	}
	f := os.NewFile(uintptr(fd), "agent")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReaderSize(nc, 1<<20)}
}

// One uid at its connection quota leaves the others untouched; users all
// together stop short of the total, and root has the rest.
func TestConnectionCaps(t *testing.T) {
	testutil.RequireRoot(t)
	cfg := testConfig()
	cfg.Limits.ConnsPerUID = 3
	cfg.Limits.ConnsTotal = 8
	cfg.Limits.ConnsRootReserve = 2
	ta := startAgent(t, cfg, newFakeBackend(t))

	// The credentials the agent sees are the other uid's.
	if st := dialAs(t, ta.sock, 65534).ok(ipc.Request{Op: ipc.OpStatus}).Status; st.Groups == nil {
		t.Fatalf("status: %+v", st)
	}
	var held []*client
	for range 2 {
		c := dialAs(t, ta.sock, 65534)
		c.ok(ipc.Request{Op: ipc.OpHello})
		held = append(held, c)
	}
	dialAs(t, ta.sock, 65534).wantLimit(ipc.CodeLimitExceeded, ipc.LimitConnsPerUID)

	for range 3 {
		c := dialAs(t, ta.sock, 65533)
		c.ok(ipc.Request{Op: ipc.OpHello}) // uid 65534 at its quota blocks nobody else
		held = append(held, c)
	}
	// Users hold 6 of 8: the last 2 are root's.
	dialAs(t, ta.sock, 65532).wantLimit(ipc.CodeLimitExceeded, ipc.LimitConnsTotal)
	r1, r2 := dial(t, ta.sock), dial(t, ta.sock)
	r1.ok(ipc.Request{Op: ipc.OpHello})
	if st := r2.ok(ipc.Request{Op: ipc.OpStatus}).Status; st.Connections != 8 {
		t.Fatalf("status counts %d connections, want 8", st.Connections)
	}
	dial(t, ta.sock).wantLimit(ipc.CodeLimitExceeded, ipc.LimitConnsTotal)

	// A closed connection frees its place (the agent notices the close
	// asynchronously: wait for the count to drop).
	held[0].nc.Close()
	for r2.ok(ipc.Request{Op: ipc.OpStatus}).Status.Connections != 7 {
		runtime.Gosched()
	}
	dialAs(t, ta.sock, 65534).ok(ipc.Request{Op: ipc.OpHello})
}
