package family

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// processUntil runs ProcessChildData(BlockUntilData) until n data or
// disconnect packets have been processed.
func processUntil(t *testing.T, m *Master, mode BlockMode, n int) {
	t.Helper()
	for range n {
		if _, err := m.ProcessChildData(testCtx(t), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func newChild(t *testing.T, m *Master, name string) *Child {
	t.Helper()
	c, err := NewChild(m.ConnectionInfo(), name)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestValuesAndQueues(t *testing.T) {
	m := newMaster(t, Options{})
	c := newChild(t, m, "w")
	must(t, c.ToMaster("k", []byte("one")))
	must(t, c.ToMaster("k", []byte("two")))
	for _, v := range []string{"a", "b", "c"} {
		must(t, c.PushToMaster("q", []byte(v)))
	}
	must(t, c.ToMaster("empty", nil))
	must(t, c.Close())
	processUntil(t, m, BlockUntilChild, 1)

	if v, ok := m.FromCID(c.CID(), "k"); !ok || string(v) != "two" {
		t.Fatalf("FromCID(k) = %q, %v; the last value should win", v, ok)
	}
	if v, ok := m.FromCID(c.CID(), "empty"); !ok || len(v) != 0 {
		t.Fatalf("FromCID(empty) = %q, %v", v, ok)
	}
	if _, ok := m.FromCID(c.CID(), "missing"); ok {
		t.Fatal("FromCID(missing) found something")
	}
	vals, queues := m.Keys(c.CID())
	if !slices.Equal(vals, []string{"empty", "k"}) || !slices.Equal(queues, []string{"q"}) {
		t.Fatalf("Keys = %v, %v", vals, queues)
	}
	if v, ok := m.PopFromCID(c.CID(), "q"); !ok || string(v) != "a" {
		t.Fatalf("PopFromCID = %q, %v; want the oldest", v, ok)
	}
	all := m.PopAllFromCID(c.CID(), "q")
	if len(all) != 2 || string(all[0]) != "b" || string(all[1]) != "c" {
		t.Fatalf("PopAllFromCID = %q", all)
	}
	if all := m.PopAllFromCID(c.CID(), "q"); all != nil {
		t.Fatalf("PopAllFromCID on an empty queue = %q", all)
	}
}

// TestFinishedAndClear follows the seed: the finished list and the data
// are cleared separately, and a child is forgotten when both are gone.
func TestFinishedAndClear(t *testing.T) {
	m := newMaster(t, Options{})
	a, b := newChild(t, m, "a"), newChild(t, m, "b")
	must(t, a.ToMaster("k", []byte("va")))
	must(t, b.ToMaster("k", []byte("vb")))
	processUntil(t, m, BlockUntilData, 2)
	if got := m.RunningChildrenNames(); len(got) != 2 || got[a.CID()] != "a" || got[b.CID()] != "b" {
		t.Fatalf("RunningChildrenNames = %v", got)
	}
	must(t, a.Close())
	processUntil(t, m, BlockUntilChild, 1)
	if got := m.FinishedChildrenNames(); len(got) != 1 || got[a.CID()] != "a" {
		t.Fatalf("FinishedChildrenNames = %v", got)
	}
	if got := m.RunningChildren(); !slices.Equal(got, []int{b.CID()}) {
		t.Fatalf("RunningChildren = %v", got)
	}

	m.ClearFinishedChildren(a.CID())
	if len(m.FinishedChildren()) != 0 {
		t.Fatal("ClearFinishedChildren left the child listed")
	}
	if _, ok := m.FromCID(a.CID(), "k"); !ok {
		t.Fatal("ClearFinishedChildren dropped the child's data")
	}
	m.ClearChildData(a.CID())
	if _, ok := m.FromCID(a.CID(), "k"); ok {
		t.Fatal("ClearChildData kept the data")
	}
	if _, ok := m.Child(a.CID()); ok {
		t.Fatal("a child with no data, not running and not listed is still known")
	}
	// Running children keep their record when their data is cleared.
	m.ClearChildData()
	if _, ok := m.FromCID(b.CID(), "k"); ok {
		t.Fatal("ClearChildData() kept b's data")
	}
	if ci, ok := m.Child(b.CID()); !ok || !ci.Running {
		t.Fatalf("running child b after ClearChildData: %+v, %v", ci, ok)
	}
	must(t, b.Close())
	processUntil(t, m, BlockUntilChild, 1)
	m.ClearFinishedChildren()
	if len(m.view.recs) != 0 {
		t.Fatalf("records left: %d", len(m.view.recs))
	}
	if used := m.budget.used.Load(); used != 0 {
		t.Fatalf("budget in use after clearing everything: %d", used)
	}
}

// TestNamesReused: by name, the newest child that has the key answers.
func TestNamesReused(t *testing.T) {
	m := newMaster(t, Options{})
	old, young := newChild(t, m, "w"), newChild(t, m, "w")
	must(t, old.ToMaster("only-old", []byte("o")))
	must(t, old.ToMaster("k", []byte("old")))
	must(t, young.ToMaster("k", []byte("young")))
	must(t, old.PushToMaster("q", []byte("from old")))
	processUntil(t, m, BlockUntilData, 4)
	if v, _ := m.FromChild("w", "k"); string(v) != "young" {
		t.Fatalf("FromChild(w, k) = %q, want the newest child's", v)
	}
	if v, _ := m.FromChild("w", "only-old"); string(v) != "o" {
		t.Fatalf("FromChild(w, only-old) = %q", v)
	}
	if v, _ := m.PopFromChild("w", "q"); string(v) != "from old" {
		t.Fatalf("PopFromChild(w, q) = %q", v)
	}
	if q := m.PopAllFromChild("w", "q"); q != nil {
		t.Fatalf("PopAllFromChild after the pop = %q", q)
	}
}

func TestJSONHelpers(t *testing.T) {
	type result struct {
		N    int      `json:"n"`
		Tags []string `json:"tags"`
	}
	m := newMaster(t, Options{})
	c := newChild(t, m, "json")
	must(t, Send(c, "r", result{N: 7, Tags: []string{"x"}}))
	must(t, Push(c, "n", 1))
	must(t, Push(c, "n", 2))
	must(t, c.ToMaster("bad", []byte("{")))
	processUntil(t, m, BlockUntilData, 4)
	r, ok, err := Get[result](m, c.CID(), "r")
	if err != nil || !ok || r.N != 7 || len(r.Tags) != 1 {
		t.Fatalf("Get = %+v, %v, %v", r, ok, err)
	}
	if r, ok, err := GetByName[result](m, "json", "r"); err != nil || !ok || r.N != 7 {
		t.Fatalf("GetByName = %+v, %v, %v", r, ok, err)
	}
	if _, ok, err := Get[result](m, c.CID(), "missing"); ok || err != nil {
		t.Fatalf("Get(missing) = %v, %v", ok, err)
	}
	if _, ok, err := Get[result](m, c.CID(), "bad"); !ok || err == nil {
		t.Fatalf("Get(bad) = %v, %v; want a decoding error", ok, err)
	}
	if n, ok, err := PopByName[int](m, "json", "n"); err != nil || !ok || n != 1 {
		t.Fatalf("PopByName = %d, %v, %v", n, ok, err)
	}
	if all, err := PopAll[int](m, c.CID(), "n"); err != nil || !slices.Equal(all, []int{2}) {
		t.Fatalf("PopAll = %v, %v", all, err)
	}
	if _, ok, _ := Pop[int](m, c.CID(), "n"); ok {
		t.Fatal("Pop on an empty queue found something")
	}
}

func TestBlockNeverReturnsLastEvent(t *testing.T) {
	m := newMaster(t, Options{})
	p, err := m.ProcessChildData(testCtx(t), BlockNever)
	if err != nil || p != PacketNoError {
		t.Fatalf("nothing pending: %v, %v", p, err)
	}
	c := newChild(t, m, "x")
	must(t, c.ToMaster("k", []byte("v")))
	// Hello then data: BlockUntilData processes the hello and returns on data.
	p, err = m.ProcessChildData(testCtx(t), BlockUntilData)
	if err != nil || p != PacketData {
		t.Fatalf("BlockUntilData = %v, %v", p, err)
	}
	must(t, c.Close())
	ctx := testCtx(t)
	for len(m.FinishedChildren()) == 0 && ctx.Err() == nil {
		p, err = m.ProcessChildData(ctx, BlockNever)
		must(t, err)
		time.Sleep(time.Millisecond)
	}
	if p != PacketChildDisconnected {
		t.Fatalf("last BlockNever = %v, want %v", p, PacketChildDisconnected)
	}
}

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	m := newMaster(t, Options{MaxValueSize: mib, MemoryLimit: mib + mib/2})
	c := newChild(t, m, "greedy")
	must(t, c.ToMaster("a", make([]byte, mib)))
	processUntil(t, m, BlockUntilData, 1)
	// The second value does not fit: the master drops the child, which
	// learns why on one of its next writes.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = c.ToMaster("b", make([]byte, mib))
	}
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeLimitExceeded {
		t.Fatalf("child's error = %v, want a limit_exceeded refusal", err)
	}
	if err2 := c.ToMaster("c", nil); err2 == nil {
		t.Fatal("a dropped child could still send")
	}
	processUntil(t, m, BlockUntilChild, 1)
	if _, ok := m.FromCID(c.CID(), "a"); !ok {
		t.Fatal("the value that fitted is gone")
	}
	if _, ok := m.FromCID(c.CID(), "b"); ok {
		t.Fatal("the value over the limit was stored")
	}
	m.ClearChildData()
	m.ClearFinishedChildren()
	if used := m.budget.used.Load(); used != 0 {
		t.Fatalf("budget in use after clearing: %d", used)
	}
}

func TestChildChecksLimits(t *testing.T) {
	m := newMaster(t, Options{MaxKeySize: 4, MaxValueSize: 10})
	c := newChild(t, m, "x")
	if c.MaxValueSize() != 10 || c.Name() != "x" {
		t.Fatalf("welcome limits: %d, name %q", c.MaxValueSize(), c.Name())
	}
	if err := c.ToMaster("k", make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("value over the limit: %v", err)
	}
	if err := c.PushToMaster("long key", nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("key over the limit: %v", err)
	}
	must(t, c.ToMaster("k", make([]byte, 10))) // the child is still usable
	must(t, c.Close())
	if err := c.ToMaster("k", nil); !errors.Is(err, ErrChildClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestVersionNegotiation(t *testing.T) {
	m := newMaster(t, Options{})
	c := dialRaw(t, m)
	_, err := c.Write(appendFrame(nil, frameHello, "future", append(helloValue(9), "extra"...)))
	must(t, err)
	w, err := parseWelcome(readAnswer(t, c).value)
	must(t, err)
	if w.version != ProtocolVersion {
		t.Fatalf("master chose version %d for a child offering 9, want %d", w.version, ProtocolVersion)
	}
}

func TestDataHandlerModes(t *testing.T) {
	m := newMaster(t, Options{})
	if err := m.Collect(testCtx(t), true, BlockNever); !errors.Is(err, ErrNoHandler) {
		t.Fatalf("Collect without a handler: %v", err)
	}
	must(t, m.StartDataHandler())
	if err := m.StartDataHandler(); !errors.Is(err, ErrHandlerRunning) {
		t.Fatalf("second StartDataHandler: %v", err)
	}
	if _, err := m.ProcessChildData(testCtx(t), BlockNever); !errors.Is(err, ErrHandlerRunning) {
		t.Fatalf("ProcessChildData with a handler: %v", err)
	}
	// Nothing has ended: a bounded Collect gives up and hands nothing over.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Collect(ctx, true, BlockUntilChild); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Collect with nothing to wait for: %v", err)
	}
	c := newChild(t, m, "h")
	must(t, c.PushToMaster("q", []byte("1")))
	must(t, m.Collect(testCtx(t), true, BlockUntilData))
	if v, _ := m.PopFromChild("h", "q"); string(v) != "1" {
		t.Fatalf("after the first Collect: %q", v)
	}
	must(t, c.PushToMaster("q", []byte("2")))
	must(t, c.Close())
	must(t, m.Collect(testCtx(t), false, BlockUntilChild))
	if v, _ := m.PopFromChild("h", "q"); string(v) != "2" {
		t.Fatalf("after the second Collect: %q", v)
	}
	if f := m.FinishedChildren(); !slices.Equal(f, []int{c.CID()}) {
		t.Fatalf("FinishedChildren = %v", f)
	}
	// The handler stopped: back to ProcessChildData, nothing lost.
	c2 := newChild(t, m, "after")
	must(t, c2.ToMaster("k", []byte("v")))
	processUntil(t, m, BlockUntilData, 1)
	if _, ok := m.FromChild("after", "k"); !ok {
		t.Fatal("data sent after the handler stopped was lost")
	}
}

func TestCloseUnblocks(t *testing.T) {
	m := newMaster(t, Options{})
	errs := make(chan error, 1)
	go func() {
		_, err := m.ProcessChildData(context.Background(), BlockUntilChild)
		errs <- err
	}()
	m2 := newMaster(t, Options{})
	must(t, m2.StartDataHandler())
	go func() { errs <- m2.Collect(context.Background(), true, BlockUntilChild) }()
	time.Sleep(10 * time.Millisecond) // let both block (the result is the same if they have not)
	must(t, m.Close())
	must(t, m2.Close())
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked call after Close: %v", err)
		}
	}
	if _, err := NewChild(m.ConnectionInfo(), ""); err == nil {
		t.Fatal("a child connected to a closed master")
	}
	must(t, m.Close()) // idempotent
}

func TestOptionsAndChildErrors(t *testing.T) {
	for _, o := range []Options{
		{MaxKeySize: MaxKeyLimit + 1},
		{MaxValueSize: -1},
		{MaxValueSize: 1 << 20, MemoryLimit: 1 << 10},
		{MaxConns: -1},
		{HelloTimeout: -time.Second},
		{Dir: "/nonexistent/dir"},
	} {
		if m, err := New(o); err == nil {
			m.Close()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	t.Setenv(EnvVar, "")
	if _, err := InitChild(""); !errors.Is(err, ErrNoMaster) {
		t.Errorf("InitChild without %s: %v", EnvVar, err)
	}
	if _, err := NewChild("tcp://127.0.0.1:1", ""); err == nil {
		t.Error("NewChild accepted a non-path connection info")
	}
	if _, err := NewChild(t.TempDir()+"/none", ""); err == nil {
		t.Error("NewChild connected to nothing")
	}
}

// TestStateMerge checks the hand-over rules directly.
func TestStateMerge(t *testing.T) {
	var b budget
	b.limit = 1 << 30
	dst, src := newState(&b), newState(&b)
	ci := ChildInfo{CID: 0, Name: "a"}
	ev := func(kind eventKind, key, v string) event {
		return event{kind: kind, child: ci, key: key, value: []byte(v)}
	}
	dst.apply(ev(evHello, "", ""))
	dst.apply(ev(evSet, "k", "old"))
	dst.apply(ev(evPush, "q", "1"))
	src.apply(ev(evSet, "k", "new"))
	src.apply(ev(evPush, "q", "2"))
	src.apply(ev(evBye, "", ""))
	dst.merge(src)
	if len(src.recs) != 0 {
		t.Fatal("merge left records in the source")
	}
	r := dst.recs[0]
	if string(r.values["k"]) != "new" || len(r.queues["q"]) != 2 || string(r.queues["q"][1]) != "2" {
		t.Fatalf("merged record: values %q queues %q", r.values, r.queues)
	}
	if r.info.Running || !r.finished {
		t.Fatalf("merged record should be finished: %+v", r.info)
	}
}
