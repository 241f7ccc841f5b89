package journald

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeJournal is a datagram socket standing in for journald's.
type fakeJournal struct {
	t    *testing.T
	path string
	ln   *net.UnixConn
}

func newFakeJournal(t *testing.T) *fakeJournal {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeJournal{t: t, path: path, ln: ln}
}

// dial returns a Conn to the fake journal, closed when the test ends.
func (j *fakeJournal) dial() *Conn {
	j.t.Helper()
	c, err := Dial(j.path)
	if err != nil {
		j.t.Fatal(err)
	}
	j.t.Cleanup(func() { c.Close() })
	return c
}

// next reads the next entry, as journald would: a datagram, or the content
// of the sealed memfd it carries. memfd says which it was.
func (j *fakeJournal) next() (fields map[string][]string, memfd bool) {
	j.t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4))
	_ = j.ln.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, oobn, _, _, err := j.ln.ReadMsgUnix(buf, oob)
	if err != nil {
		j.t.Fatal(err)
	}
	data := buf[:n]
	if oobn > 0 {
		data, memfd = j.readMemfd(oob[:oobn]), true
	}
	fields, err = parseEntry(data)
	if err != nil {
		j.t.Fatalf("entry %q: %v", data, err)
	}
	return fields, memfd
}

// readMemfd reads the descriptor passed in oob, checking that it is sealed
// as journald requires.
func (j *fakeJournal) readMemfd(oob []byte) []byte {
	j.t.Helper()
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		j.t.Fatalf("control message: %v (%d)", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		j.t.Fatalf("rights: %v %v", err, fds)
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if err != nil || seals&want != want {
		j.t.Fatalf("memfd seals %#x (%v), want %#x", seals, err, want)
	}
	var b bytes.Buffer // from the start: the sender's writes left the offset at the end
	if _, err := b.ReadFrom(io.NewSectionReader(f, 0, 1<<40)); err != nil {
		j.t.Fatal(err)
	}
	return b.Bytes()
}

func one(t *testing.T, f map[string][]string, name string) string {
	t.Helper()
	if len(f[name]) != 1 {
		t.Fatalf("field %s: %q, want one value (entry %q)", name, f[name], f)
	}
	return f[name][0]
}

// Each attribute is a field of its own, named with the prefix; MESSAGE
// reads like a text log; a value with a newline goes in the binary form.
func TestHandlerSendsFields(t *testing.T) {
	j := newFakeJournal(t)
	log := slog.New(NewHandler(j.dial(), Options{Prefix: "ORPHAND_", Identifier: "orphand"}))
	log.Info("group killed", "group", "5bf9a55bc3d7", "spawner_pid", 4242, "event", "killed",
		"err", errors.New("two\nlines"), "took", 1500*time.Microsecond)
	f, memfd := j.next()
	if memfd {
		t.Error("a small entry went through a memfd")
	}
	for name, want := range map[string]string{
		"PRIORITY": "6", "SYSLOG_IDENTIFIER": "orphand",
		"ORPHAND_GROUP": "5bf9a55bc3d7", "ORPHAND_SPAWNER_PID": "4242", "ORPHAND_EVENT": "killed",
		"ORPHAND_ERR": "two\nlines", "ORPHAND_TOOK": "1.5ms",
		"MESSAGE": `group killed group=5bf9a55bc3d7 spawner_pid=4242 event=killed err="two\nlines" took=1.5ms`,
	} {
		if got := one(t, f, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// With and WithGroup carry over, a group's attributes flattened with "_"
// in field names and "." in the text.
func TestHandlerWithAndGroups(t *testing.T) {
	j := newFakeJournal(t)
	log := slog.New(NewHandler(j.dial(), Options{Prefix: "ORPHAND_"})).With("uid", 1000)
	log.WithGroup("kill").Warn("slow", "ms", 12, slog.Group("by", "reason", "request"))
	f, _ := j.next()
	for name, want := range map[string]string{
		"PRIORITY": "4", "ORPHAND_UID": "1000", "ORPHAND_KILL_MS": "12", "ORPHAND_KILL_BY_REASON": "request",
		"MESSAGE": "slow uid=1000 kill.ms=12 kill.by.reason=request",
	} {
		if got := one(t, f, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, ok := f["SYSLOG_IDENTIFIER"]; ok {
		t.Error("SYSLOG_IDENTIFIER sent without an Identifier")
	}
}

func TestHandlerLevels(t *testing.T) {
	j := newFakeJournal(t)
	h := NewHandler(j.dial(), Options{Level: slog.LevelDebug})
	log := slog.New(h)
	for _, c := range []struct {
		level slog.Level
		want  string
	}{{slog.LevelDebug, "7"}, {slog.LevelInfo, "6"}, {slog.LevelWarn, "4"}, {slog.LevelError, "3"}, {slog.LevelError + 4, "3"}} {
		log.Log(t.Context(), c.level, "x")
		f, _ := j.next()
		if got := one(t, f, "PRIORITY"); got != c.want {
			t.Errorf("level %v: PRIORITY %s, want %s", c.level, got, c.want)
		}
	}
	if NewHandler(nil, Options{}).Enabled(t.Context(), slog.LevelDebug) {
		t.Error("the default level lets debug through")
	}
}

// An entry too large for one datagram goes through a sealed memfd, whole.
func TestHandlerLargeEntryThroughMemfd(t *testing.T) {
	j := newFakeJournal(t)
	c := j.dial()
	// A small send buffer makes a 256 KiB entry too large for a datagram,
	// as the agent's ~416 KiB buffer (no CAP_NET_ADMIN) does for larger ones.
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 256<<10)
	slog.New(NewHandler(c, Options{Prefix: "T_"})).Info("big", "blob", big)
	f, memfd := j.next()
	if !memfd {
		t.Fatal("a 256 KiB entry went as a datagram; want a memfd")
	}
	if got := one(t, f, "T_BLOB"); got != big {
		t.Fatalf("T_BLOB has %d bytes, want %d", len(got), len(big))
	}
}

// When journald does not take an entry, it goes to the fallback as text.
func TestHandlerFallback(t *testing.T) {
	c, err := Dial(filepath.Join(t.TempDir(), "nobody-listens"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	slog.New(NewHandler(c, Options{Fallback: &out})).Error("lost", "group", "g1")
	if got := out.String(); !strings.HasPrefix(got, "ERROR lost group=g1 (not in the journal: ") {
		t.Fatalf("fallback got %q", got)
	}
	if err := NewHandler(c, Options{}).Handle(t.Context(), slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)); err == nil {
		t.Fatal("no fallback and no journal: Handle returned nil")
	}
}

// $JOURNAL_STREAM counts only when it names stderr itself.
func TestStderrIsJournal(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Fstat(2, &st); err != nil {
		t.Fatal(err)
	}
	for env, want := range map[string]bool{
		fmt.Sprintf("%d:%d", st.Dev, st.Ino):   true,
		fmt.Sprintf("%d:%d", st.Dev, st.Ino+1): false,
		"garbage":                              false,
	} {
		t.Setenv("JOURNAL_STREAM", env)
		if got := StderrIsJournal(); got != want {
			t.Errorf("JOURNAL_STREAM=%q: %v, want %v", env, got, want)
		}
	}
}
