package sdfdstore

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary run takeChild instead of the tests.
const childEnv = "SDFDSTORE_TEST_TAKE"

func TestMain(m *testing.M) {
	if want := os.Getenv(childEnv); want != "" {
		os.Exit(takeChild(want))
	}
	os.Exit(m.Run())
}

// listenNotify is a stand-in for systemd's notify socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receive reads one datagram and the descriptors it carries.
func receive(t *testing.T, c *net.UnixConn) (string, []*os.File) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*maxFDsPerMessage))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			f := os.NewFile(uintptr(fd), "received")
			t.Cleanup(func() { f.Close() })
			files = append(files, f)
		}
	}
	return string(buf[:n]), files
}

func inode(t *testing.T, fd uintptr) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestStoreAndRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	srv := listenNotify(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	n, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	if err := n.Store("pidfd.abc.spawner", int(r.Fd()), int(w.Fd())); err != nil {
		t.Fatal(err)
	}
	msg, files := receive(t, srv)
	if msg != "FDSTORE=1\nFDNAME=pidfd.abc.spawner\nFDPOLL=0" {
		t.Errorf("message %q", msg)
	}
	if len(files) != 2 || inode(t, files[0].Fd()) != inode(t, r.Fd()) || inode(t, files[1].Fd()) != inode(t, w.Fd()) {
		t.Fatalf("received %d descriptors, want the pipe's two ends in order", len(files))
	}

	if err := n.Remove("pidfd.abc.spawner"); err != nil {
		t.Fatal(err)
	}
	if msg, files := receive(t, srv); msg != "FDSTOREREMOVE=1\nFDNAME=pidfd.abc.spawner" || len(files) != 0 {
		t.Errorf("remove sent %q with %d descriptors", msg, len(files))
	}
	if err := n.Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	if msg, _ := receive(t, srv); msg != "READY=1" {
		t.Errorf("notify sent %q", msg)
	}
}

// More descriptors than one message may carry go in several messages,
// each with the name.
func TestStoreManyInChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	srv := listenNotify(t, path)
	n, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fds := make([]int, maxFDsPerMessage+10)
	for i := range fds {
		fds[i] = int(f.Fd())
	}
	go func() { _ = n.Store("many", fds...) }() // blocks until both are read
	got := 0
	for range 2 {
		msg, files := receive(t, srv)
		if !strings.Contains(msg, "FDNAME=many") {
			t.Errorf("message %q lacks the name", msg)
		}
		got += len(files)
		for _, rf := range files {
			rf.Close()
		}
	}
	if got != len(fds) {
		t.Errorf("received %d descriptors, sent %d", got, len(fds))
	}
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@sdfdstore-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	srv := listenNotify(t, name)
	n, err := Dial(name)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Notify("STATUS=hi"); err != nil {
		t.Fatal(err)
	}
	if msg, _ := receive(t, srv); msg != "STATUS=hi" {
		t.Errorf("got %q", msg)
	}
}

func TestOpenWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if _, err := Open(); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Fatalf("Open without $NOTIFY_SOCKET: %v", err)
	}
	if _, err := Dial("vsock:2:1"); err == nil {
		t.Fatal("Dial accepted a vsock address")
	}
}

func TestSendToNobody(t *testing.T) {
	n, err := Dial(filepath.Join(t.TempDir(), "nobody.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Notify("READY=1"); err == nil {
		t.Fatal("a message to a missing socket succeeded")
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"pidfd.0123abcd.spawner", "a", strings.Repeat("x", MaxNameLen), "orphand.socket"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a:b", "a b", "a\nFDSTOREREMOVE=1", "a\\b", "é", strings.Repeat("x", MaxNameLen+1), "a\x00"} {
		if err := ValidName(bad); err == nil {
			t.Errorf("ValidName(%q) accepted it", bad)
		}
	}
	n, err := Dial(filepath.Join(t.TempDir(), "unused.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Store("bad:name", 0); err == nil {
		t.Error("Store accepted a bad name")
	}
}

func TestEnvMax(t *testing.T) {
	t.Setenv("FDSTORE", "16384")
	if n, ok := EnvMax(); !ok || n != 16384 {
		t.Errorf("EnvMax = %d, %v", n, ok)
	}
	t.Setenv("FDSTORE", "many")
	if _, ok := EnvMax(); ok {
		t.Error("EnvMax accepted a non-number")
	}
	os.Unsetenv("FDSTORE")
	if _, ok := EnvMax(); ok {
		t.Error("EnvMax without $FDSTORE")
	}
}

// takeResult is what takeChild reports: for each file, its name and inode.
type takeResult struct {
	Taken     []namedIno `json:"taken"`
	Left      []namedIno `json:"left"` // what activation.Files then finds
	ListenFDs string     `json:"listen_fds"`
	Names     string     `json:"names"`
	Err       string     `json:"err,omitempty"`
}

type namedIno struct {
	Name string `json:"name"`
	Ino  uint64 `json:"ino"`
}

// takeChild runs in the re-executed test binary: it plays the agent,
// taking the descriptors whose names start with prefix.
func takeChild(prefix string) int {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	var res takeResult
	taken, err := Take(func(name string) bool { return strings.HasPrefix(name, prefix) })
	if err != nil {
		res.Err = err.Error()
	}
	ino := func(f *os.File) uint64 {
		var st unix.Stat_t
		_ = unix.Fstat(int(f.Fd()), &st)
		return st.Ino
	}
	for _, f := range taken {
		if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
			res.Err = fmt.Sprintf("taken %s is not close-on-exec", f.Name())
		}
		res.Taken = append(res.Taken, namedIno{f.Name(), ino(f)})
	}
	res.ListenFDs, res.Names = os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, f := range activation.Files(true) {
		res.Left = append(res.Left, namedIno{f.Name(), ino(f)})
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// runTake re-executes the test binary with files passed at 3, 4, … named
// names, the way systemd passes them.
func runTake(t *testing.T, prefix string, names []string, withNames bool) (takeResult, map[string]uint64) {
	t.Helper()
	dir := t.TempDir()
	inos := map[string]uint64{}
	var files []*os.File
	for _, n := range names {
		f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(n, "/", "_")+strconv.Itoa(len(files))))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
		inos[n] = inode(t, f.Fd())
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+prefix, "LISTEN_FDS="+strconv.Itoa(len(files)))
	if withNames {
		cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var res takeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	if res.Err != "" {
		t.Fatalf("child: %s", res.Err)
	}
	return res, inos
}

func TestTake(t *testing.T) {
	for _, tc := range []struct {
		name      string
		passed    []string
		wantTaken []string
		wantLeft  []string
	}{
		{
			"socket first, as systemd passes them",
			[]string{"orphand.socket", "pidfd.a.spawner", "pidfd.b.targets"},
			[]string{"pidfd.a.spawner", "pidfd.b.targets"},
			[]string{"orphand.socket"},
		},
		{
			"interleaved",
			[]string{"pidfd.a.spawner", "orphand.socket", "pidfd.b.targets", "extra.socket"},
			[]string{"pidfd.a.spawner", "pidfd.b.targets"},
			[]string{"orphand.socket", "extra.socket"},
		},
		{
			"only stored",
			[]string{"pidfd.a.spawner", "pidfd.b.spawner"},
			[]string{"pidfd.a.spawner", "pidfd.b.spawner"},
			nil,
		},
		{"nothing stored", []string{"orphand.socket"}, nil, []string{"orphand.socket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, inos := runTake(t, "pidfd.", tc.passed, true)
			check := func(what string, got []namedIno, want []string) {
				t.Helper()
				var names []string
				for _, g := range got {
					names = append(names, g.Name)
					if inos[g.Name] != g.Ino {
						t.Errorf("%s %s is another file (inode %d, want %d)", what, g.Name, g.Ino, inos[g.Name])
					}
				}
				if !slices.Equal(names, want) {
					t.Errorf("%s %v, want %v", what, names, want)
				}
			}
			check("taken", res.Taken, tc.wantTaken)
			check("left for activation", res.Left, tc.wantLeft)
			if len(tc.wantTaken) > 0 && len(tc.wantLeft) > 0 {
				if res.ListenFDs != strconv.Itoa(len(tc.wantLeft)) || res.Names != strings.Join(tc.wantLeft, ":") {
					t.Errorf("environment after Take: LISTEN_FDS=%q LISTEN_FDNAMES=%q", res.ListenFDs, res.Names)
				}
			}
			if len(tc.wantLeft) == 0 && res.ListenFDs != "" {
				t.Errorf("LISTEN_FDS=%q left set with nothing left", res.ListenFDs)
			}
		})
	}
}

// Without $LISTEN_FDNAMES every descriptor is "unknown": none is taken.
func TestTakeUnnamed(t *testing.T) {
	res, _ := runTake(t, "pidfd.", []string{"a", "b"}, false)
	if len(res.Taken) != 0 || len(res.Left) != 2 {
		t.Errorf("took %v, left %v", res.Taken, res.Left)
	}
}

// Descriptors passed to another process (LISTEN_PID) are not ours.
func TestTakeNotForUs(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_FDNAMES", "pidfd.x")
	got, err := Take(func(string) bool { return true })
	if err != nil || got != nil {
		t.Fatalf("Take = %v, %v", got, err)
	}
	if os.Getenv("LISTEN_FDS") != "1" {
		t.Error("Take changed the environment of another process's descriptors")
	}
}

// A stored pidfd survives the round trip: what comes back names the same
// process.
func TestStorePidfd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	srv := listenNotify(t, path)
	n, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skipf("no pidfd_open: %v", err)
	}
	defer unix.Close(fd)
	if err := n.Store("pidfd.self.spawner", fd); err != nil {
		t.Fatal(err)
	}
	_, files := receive(t, srv)
	if len(files) != 1 {
		t.Fatalf("got %d descriptors", len(files))
	}
	if err := unix.PidfdSendSignal(int(files[0].Fd()), syscall.Signal(0), nil, 0); err != nil {
		t.Errorf("the received pidfd does not reach this process: %v", err)
	}
}
