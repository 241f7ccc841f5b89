package family

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"
)

// dialRaw connects to m without saying anything.
func dialRaw(t *testing.T, m *Master) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: m.ConnectionInfo(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawHello says hello on c and returns the welcome.
func rawHello(t *testing.T, c *net.UnixConn, name string) welcome {
	t.Helper()
	_, err := c.Write(appendFrame(nil, frameHello, name, helloValue(1)))
	must(t, err)
	f := readAnswer(t, c)
	if f.typ != frameWelcome {
		t.Fatalf("answer to hello: %s %q %q", frameName(f.typ), f.key, f.value)
	}
	w, err := parseWelcome(f.value)
	must(t, err)
	return w
}

// readAnswer reads one frame the master sent.
func readAnswer(t *testing.T, c *net.UnixConn) frame {
	t.Helper()
	must(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
	f, err := newFrameReader(c, limits{maxKey: MaxKeyLimit}).readFrame()
	if err != nil {
		t.Fatalf("reading the master's answer: %v", err)
	}
	return f
}

// expectRefused reads an error frame with code, then the end of the stream.
func expectRefused(t *testing.T, c *net.UnixConn, code string) {
	t.Helper()
	f := readAnswer(t, c)
	if f.typ != frameError || f.key != code {
		t.Fatalf("got %s %q %q, want an error frame %q", frameName(f.typ), f.key, f.value, code)
	}
	t.Logf("refused: %s: %s", f.key, f.value)
	n, err := c.Read(make([]byte, 1))
	if n != 0 || (err == nil) {
		t.Fatalf("after the error frame: read %d bytes, %v; want the end of the stream", n, err)
	}
}

// expectNoChildren checks that nothing reached the master's state.
func expectNoChildren(t *testing.T, m *Master) {
	t.Helper()
	p, err := m.ProcessChildData(testCtx(t), BlockNever)
	must(t, err)
	if p != PacketNoError || len(m.RunningChildren()) != 0 || len(m.FinishedChildren()) != 0 {
		t.Fatalf("a refused connection reached the master: %v, running %v, finished %v", p, m.RunningChildren(), m.FinishedChildren())
	}
}

func TestHostileNoHello(t *testing.T) {
	m := newMaster(t, Options{HelloTimeout: 200 * time.Millisecond})
	c := dialRaw(t, m)
	expectRefused(t, c, CodeTimeout)
	expectNoChildren(t, m)
	// A real child still gets through, and the silent one used no CID.
	child, err := NewChild(m.ConnectionInfo(), "ok")
	must(t, err)
	defer child.Close()
	if child.CID() != 0 {
		t.Fatalf("first real child has CID %d, want 0", child.CID())
	}
}

func TestHostileGarbage(t *testing.T) {
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	cases := []struct {
		name  string
		input []byte
		code  string
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), CodeBadRequest},
		{"random", random, CodeBadRequest},
		{"data before hello", appendFrame(nil, frameSet, "k", []byte("v")), CodeBadRequest},
		{"bad magic", appendFrame(nil, frameHello, "x", []byte("nope\x00\x01")), CodeBadRequest},
		{"version 0", appendFrame(nil, frameHello, "x", helloValue(0)), CodeUnsupportedVersion},
		{"huge name", appendHeader(nil, frameHello, MaxKeyLimit, 6), CodeTooLarge},
	}
	m := newMaster(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, m)
			_, err := c.Write(tc.input)
			must(t, err)
			expectRefused(t, c, tc.code)
		})
	}
	expectNoChildren(t, m)
}

func TestHostileAfterHello(t *testing.T) {
	m := newMaster(t, Options{MaxKeySize: 8, MaxValueSize: 100})
	for _, tc := range []struct {
		name  string
		input []byte
		code  string
	}{
		{"value too large", appendHeader(nil, frameSet, 1, 101), CodeTooLarge},
		{"key too long", appendHeader(nil, framePush, 9, 0), CodeTooLarge},
		{"second hello", appendFrame(nil, frameHello, "x", helloValue(1)), CodeBadRequest},
		{"welcome from a child", appendFrame(nil, frameWelcome, "", make([]byte, welcomeSize)), CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, m)
			w := rawHello(t, c, "x")
			_, err := c.Write(tc.input)
			must(t, err)
			expectRefused(t, c, tc.code)
			if _, err := m.ProcessChildData(testCtx(t), BlockUntilChild); err != nil {
				t.Fatal(err)
			}
			ci, ok := m.Child(w.cid)
			var fe *FrameError
			if !ok || ci.Running || !errors.As(ci.Err, &fe) || fe.Code != tc.code {
				t.Fatalf("child %d: %+v, %v; want finished with %s", w.cid, ci, ok, tc.code)
			}
		})
	}
}

func TestHostileHalfFrame(t *testing.T) {
	t.Run("half a hello", func(t *testing.T) {
		m := newMaster(t, Options{HelloTimeout: 300 * time.Millisecond})
		c := dialRaw(t, m)
		hello := appendFrame(nil, frameHello, "slow", helloValue(1))
		_, err := c.Write(hello[:5])
		must(t, err)
		expectRefused(t, c, CodeTimeout)
		expectNoChildren(t, m)
	})
	t.Run("half a value", func(t *testing.T) {
		m := newMaster(t, Options{StallTimeout: 300 * time.Millisecond})
		c := dialRaw(t, m)
		w := rawHello(t, c, "staller")
		_, err := c.Write(appendFrame(nil, frameSet, "before", []byte("kept")))
		must(t, err)
		_, err = c.Write(appendFrame(nil, frameSet, "partial", make([]byte, 1000))[:500])
		must(t, err)
		expectRefused(t, c, CodeTimeout)
		expectDroppedMidFrame(t, m, w.cid, CodeTimeout)
	})
}

// expectDroppedMidFrame checks that child cid finished with a partial
// frame lost: "before" kept, "partial" not, nothing left reserved for it.
func expectDroppedMidFrame(t *testing.T, m *Master, cid int, code string) {
	t.Helper()
	p, err := m.ProcessChildData(testCtx(t), BlockUntilChild)
	must(t, err)
	if p != PacketChildDisconnected {
		t.Fatalf("ProcessChildData = %v", p)
	}
	if f := m.FinishedChildren(); len(f) != 1 || f[0] != cid {
		t.Fatalf("FinishedChildren = %v, want [%d]", f, cid)
	}
	ci, _ := m.Child(cid)
	if ci.Err == nil {
		t.Fatal("child ended mid-frame but ChildInfo.Err is nil")
	}
	var fe *FrameError
	if code != "" && (!errors.As(ci.Err, &fe) || fe.Code != code) {
		t.Fatalf("ChildInfo.Err = %v, want code %s", ci.Err, code)
	}
	t.Logf("child %d ended: %v", cid, ci.Err)
	if v, ok := m.FromCID(cid, "before"); !ok || string(v) != "kept" {
		t.Fatalf("value sent before the partial frame: %q, %v", v, ok)
	}
	if _, ok := m.FromCID(cid, "partial"); ok {
		t.Fatal("the partial value was stored")
	}
	want := recordOverhead + int64(len(ci.Name)) + entryCost("before", []byte("kept"))
	if got := m.budget.used.Load(); got != want {
		t.Fatalf("budget in use %d, want %d: the partial frame's reservation leaked", got, want)
	}
}

func init() {
	// midframe: send one whole value, then part of a large one, say
	// "ready" and wait to be killed.
	roles["midframe"] = func() error {
		c, err := InitChild("midframe")
		if err != nil {
			return err
		}
		if err := c.ToMaster("before", []byte("kept")); err != nil {
			return err
		}
		part := appendHeader(nil, frameSet, len("partial"), 1<<20)
		part = append(append(part, "partial"...), make([]byte, 64<<10)...)
		if _, err := c.conn.Write(part); err != nil {
			return err
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return nil
	}
}

func TestHostileKilledMidFrame(t *testing.T) {
	m := newMaster(t, Options{})
	child := spawn(t, m, "midframe")
	if l := child.line(t); l != "ready" {
		t.Fatalf("child said %q", l)
	}
	must(t, child.cmd.Process.Signal(syscall.SIGKILL))
	expectDroppedMidFrame(t, m, 0, "")
}

func TestMaxConns(t *testing.T) {
	m := newMaster(t, Options{MaxConns: 2})
	dialRaw(t, m)
	dialRaw(t, m)
	expectRefused(t, dialRaw(t, m), CodeLimitExceeded)
	// A Go child learns why, although the master refused before reading.
	_, err := NewChild(m.ConnectionInfo(), "late")
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeLimitExceeded {
		t.Fatalf("NewChild past the limit: %v, want a limit_exceeded refusal", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	m := newMaster(t, Options{IdleTimeout: 200 * time.Millisecond})
	c := dialRaw(t, m)
	w := rawHello(t, c, "quiet")
	expectRefused(t, c, CodeTimeout)
	_, err := m.ProcessChildData(testCtx(t), BlockUntilChild)
	must(t, err)
	if ci, _ := m.Child(w.cid); ci.Running || ci.Err == nil {
		t.Fatalf("idle child: %+v, want finished with a timeout", ci)
	}
}
