package family

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// The examples of IPC::Fork::Simple's documentation (seed 002, EXAMPLES),
// one test each, with the forked child replaced by a re-executed process.

func init() {
	roles["seed-child"] = func() error {
		c, err := InitChild("")
		if err != nil {
			return err
		}
		defer c.Close()
		return c.ToMaster("test", bytes.Repeat([]byte("a"), 300))
	}
	roles["seed-queue"] = func() error {
		c, err := InitChild("")
		if err != nil {
			return err
		}
		defer c.Close()
		for i, b := range []string{"a", "b", "c"} {
			if err := c.PushToMaster("test", bytes.Repeat([]byte(b), 300+i)); err != nil {
				return err
			}
		}
		return nil
	}
	roles["seed-bidi"] = seedBidiChild
	roles["seed-bidi-handler"] = seedBidiHandlerChild
}

// Data Handler: the master gathers in the background while it "does
// important stuff", waits for the child, then collects.
func TestSeedDataHandler(t *testing.T) {
	m := newMaster(t, Options{})
	must(t, m.StartDataHandler())
	child := spawn(t, m, "seed-child")
	child.wait(t)
	// The seed collects right after waitpid; its own NOTES say an exited
	// child's data may not have been processed yet. Blocking until the
	// child's disconnection makes the example deterministic.
	must(t, m.Collect(testCtx(t), false, BlockUntilChild))
	v, ok := m.FromChild(child.Name(), "test")
	if !ok || len(v) != 300 {
		t.Fatalf("FromChild(%s, test) = %d bytes, %v; want 300", child.Name(), len(v), ok)
	}
	// keepRunning false stopped the handler; the master can process again.
	if _, err := m.ProcessChildData(testCtx(t), BlockNever); err != nil {
		t.Fatalf("ProcessChildData after the handler stopped: %v", err)
	}
}

// Blocking: one ProcessChildData(BlockUntilChild) per child.
func TestSeedBlocking(t *testing.T) {
	m := newMaster(t, Options{})
	child := spawn(t, m, "seed-child")
	p, err := m.ProcessChildData(testCtx(t), BlockUntilChild)
	must(t, err)
	if p != PacketChildDisconnected {
		t.Fatalf("ProcessChildData = %v, want %v", p, PacketChildDisconnected)
	}
	finished := m.FinishedChildren()
	if len(finished) != 1 {
		t.Fatalf("FinishedChildren = %v, want one", finished)
	}
	if v, _ := m.FromChild(child.Name(), "test"); len(v) != 300 {
		t.Fatalf("FromChild = %d bytes, want 300", len(v))
	}
	if v, _ := m.FromCID(finished[0], "test"); len(v) != 300 {
		t.Fatalf("FromCID = %d bytes, want 300", len(v))
	}
	child.wait(t)
}

// Polling: the master loops on ProcessChildData(BlockNever) doing other
// work until a child has finished.
func TestSeedPolling(t *testing.T) {
	m := newMaster(t, Options{})
	child := spawn(t, m, "seed-child")
	ctx := testCtx(t)
	for len(m.FinishedChildren()) == 0 {
		if _, err := m.ProcessChildData(ctx, BlockNever); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("no child finished in time")
		}
		time.Sleep(time.Millisecond) // the seed's sleep(0): other work goes here
	}
	if v, _ := m.FromChild(child.Name(), "test"); len(v) != 300 {
		t.Fatalf("FromChild = %d bytes, want 300", len(v))
	}
	child.wait(t)
}

// Data queues: three pushes pop oldest first.
func TestSeedDataQueues(t *testing.T) {
	m := newMaster(t, Options{})
	child := spawn(t, m, "seed-queue")
	_, err := m.ProcessChildData(testCtx(t), BlockUntilChild)
	must(t, err)
	for _, want := range []int{300, 301, 302} {
		v, ok := m.PopFromChild(child.Name(), "test")
		if !ok || len(v) != want {
			t.Fatalf("PopFromChild = %d bytes, %v; want %d", len(v), ok, want)
		}
	}
	if v, ok := m.PopFromChild(child.Name(), "test"); ok {
		t.Fatalf("a fourth pop returned %d bytes", len(v))
	}
	child.wait(t)
}

const masterPidEnv = "FAMILY_TEST_MASTER_PID"

// Bi-directional communication: the child makes a master of its own and
// sends its connection info up; the parent answers through it.
func TestSeedBidirectional(t *testing.T) {
	m := newMaster(t, Options{})
	child := spawn(t, m, "seed-bidi", masterPidEnv+"="+strconv.Itoa(os.Getpid()))
	_, err := m.ProcessChildData(testCtx(t), BlockUntilData)
	must(t, err)
	info, ok := m.FromChild(child.Name(), "connection_info")
	if !ok {
		t.Fatal("no connection_info from the child")
	}
	reply, err := NewChild(string(info), "")
	must(t, err)
	must(t, reply.ToMaster("master_test", bytes.Repeat([]byte("a"), 300)))
	must(t, reply.Close())
	child.wait(t) // it exits 0 only if it got the 300 bytes
}

func seedBidiChild() error {
	c, err := InitChild("")
	if err != nil {
		return err
	}
	defer c.Close()
	m2, err := New(Options{})
	if err != nil {
		return err
	}
	defer m2.Close()
	if err := c.ToMaster("connection_info", []byte(m2.ConnectionInfo())); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m2.ProcessChildData(ctx, BlockUntilData); err != nil {
		return err
	}
	v, _ := m2.FromChild(os.Getenv(masterPidEnv), "master_test")
	if len(v) != 300 {
		return fmt.Errorf("master_test is %d bytes, want 300", len(v))
	}
	return nil
}

// Bi-directional communication with data handlers: both sides gather in
// the background.
func TestSeedBidirectionalWithDataHandlers(t *testing.T) {
	m := newMaster(t, Options{})
	must(t, m.StartDataHandler())
	child := spawn(t, m, "seed-bidi-handler", masterPidEnv+"="+strconv.Itoa(os.Getpid()))
	must(t, m.Collect(testCtx(t), true, BlockUntilData))
	info, ok := m.FromChild(child.Name(), "connection_info")
	if !ok {
		t.Fatal("no connection_info from the child")
	}
	reply, err := NewChild(string(info), "")
	must(t, err)
	must(t, reply.ToMaster("master_test", bytes.Repeat([]byte("a"), 300)))
	must(t, reply.Close())
	must(t, m.Collect(testCtx(t), false, BlockUntilChild))
	if f := m.FinishedChildren(); len(f) != 1 {
		t.Fatalf("FinishedChildren = %v, want the one child", f)
	}
	child.wait(t)
}

func seedBidiHandlerChild() error {
	c, err := InitChild("")
	if err != nil {
		return err
	}
	defer c.Close()
	m2, err := New(Options{})
	if err != nil {
		return err
	}
	defer m2.Close()
	if err := m2.StartDataHandler(); err != nil {
		return err
	}
	if err := c.ToMaster("connection_info", []byte(m2.ConnectionInfo())); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if err := m2.Collect(ctx, true, BlockNever); err != nil {
			return err
		}
		if v, ok := m2.FromChild(os.Getenv(masterPidEnv), "master_test"); ok {
			if len(v) != 300 {
				return fmt.Errorf("master_test is %d bytes, want 300", len(v))
			}
			return nil
		}
		if ctx.Err() != nil {
			return errors.New("master_test never came")
		}
		time.Sleep(time.Millisecond)
	}
}
