package proctree

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startTree starts `sh` running script and kills its whole tree at cleanup.
func startTree(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pids, _ := Descendants(cmd.Process.Pid)
		for _, pid := range pids {
			if p, err := Open(pid); err == nil {
				_ = p.Signal(9)
				p.Close()
			}
		}
		killWait(cmd)
	})
	return cmd
}

func TestDescendantsKnownTree(t *testing.T) {
	// sh ─┬─ sleep
	//     ├─ sleep
	//     └─ sh ─┬─ sleep
	//            └─ sleep
	cmd := startTree(t, "sleep 60 & sleep 61 & sh -c 'sleep 62 & sleep 63 & wait' & wait")
	root := cmd.Process.Pid
	var pids []int
	waitFor(t, "the tree to be built", 10*time.Second, func() bool {
		var err error
		pids, err = Descendants(root)
		if err != nil {
			t.Fatal(err)
		}
		return len(pids) == 5 && countComm(pids, "sleep") == 4
	})
	if slices.Contains(pids, root) {
		t.Errorf("Descendants(%d) = %v includes the root", root, pids)
	}
	// Breadth first: the three children of root come before the two
	// grandchildren.
	for i, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if wantRoot := i < 3; (st.PPid == root) != wantRoot {
			t.Errorf("pid %d at %d has parent %d; want the root's children first (%v)", pid, i, st.PPid, pids)
		}
	}
	leaf := pids[len(pids)-1]
	if d, err := Descendants(leaf); err != nil || len(d) != 0 {
		t.Errorf("Descendants(leaf %d) = %v, %v; want none", leaf, d, err)
	}
}

// TestChildren: the root's direct children only, of every thread, and
// ErrProcessDone once the root is reaped.
func TestChildren(t *testing.T) {
	cmd := startTree(t, "sleep 60 & sleep 61 & sh -c 'sleep 62 & wait' & wait")
	root := cmd.Process.Pid
	var kids []int
	waitFor(t, "the tree to be built", 10*time.Second, func() bool {
		d, err := Descendants(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != 4 || countComm(d, "sleep") != 3 {
			return false
		}
		if kids, err = Children(root); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if len(kids) != 3 {
		t.Fatalf("Children(%d) = %v; want 3 pids", root, kids)
	}
	for _, pid := range kids {
		if st, err := readStat(pid); err != nil || st.PPid != root {
			t.Errorf("Children(%d) lists pid %d, whose stat is %+v, %v", root, pid, st, err)
		}
	}
	if _, err := Children(0); err == nil {
		t.Error("Children(0) succeeded")
	}
	// End the tree before its root: once the root is reaped, startTree's
	// cleanup can no longer find the sleeps.
	d, _ := Descendants(root)
	for _, pid := range d {
		if p, err := Open(pid); err == nil {
			_ = p.Signal(9)
			p.Close()
		}
	}
	killWait(cmd)
	if _, err := Children(root); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Children of a reaped pid = %v, want ErrProcessDone", err)
	}
}

func countComm(pids []int, comm string) int {
	n := 0
	for _, pid := range pids {
		if st, err := readStat(pid); err == nil && st.Comm == comm {
			n++
		}
	}
	return n
}

func TestDescendantsVanishing(t *testing.T) {
	// A tree whose members exit as fast as they are created: walks must
	// neither fail nor repeat a pid.
	cmd := startTree(t, "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); /bin/true & sh -c 'exit 0' & done; wait")
	root := cmd.Process.Pid
	walks := 0
	for done := false; !done; walks++ {
		pids, err := Descendants(root)
		if errors.Is(err, os.ErrProcessDone) {
			break // the root exited and was reaped: the loop is over
		}
		if err != nil {
			t.Fatalf("walk %d: %v", walks, err)
		}
		seen := map[int]bool{}
		for _, pid := range pids {
			if seen[pid] {
				t.Fatalf("walk %d: pid %d twice in %v", walks, pid, pids)
			}
			seen[pid] = true
		}
		if st, err := readStat(root); err != nil || st.IsZombie() {
			done = true
		}
	}
	if walks < 2 {
		t.Logf("only %d walks while the tree churned", walks)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := Descendants(root); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Descendants of a reaped pid = %v, want ErrProcessDone", err)
	}
	if _, err := Descendants(0); err == nil {
		t.Error("Descendants(0) succeeded")
	}
}

func TestParseChildren(t *testing.T) {
	for in, want := range map[string][]int{
		"":               nil,
		"12 ":            {12},
		"1 22 333 4444 ": {1, 22, 333, 4444},
		"5\n":            {5},
	} {
		var got []int
		if err := parseChildren(strings.NewReader(in), func(p int) { got = append(got, p) }); err != nil || !slices.Equal(got, want) {
			t.Errorf("parseChildren(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "1 -2 ", "0", strings.Repeat("9", 100)} {
		if err := parseChildren(strings.NewReader(in), func(int) {}); !errors.Is(err, ErrBadChildren) {
			t.Errorf("parseChildren(%.20q) = %v, want ErrBadChildren", in, err)
		}
	}
}

func FuzzParseChildren(f *testing.F) {
	f.Add("1 2 3 ")
	f.Add("")
	f.Add("4194304 x")
	f.Fuzz(func(t *testing.T, in string) {
		var got []string
		err := parseChildren(strings.NewReader(in), func(p int) {
			if p <= 0 {
				t.Fatalf("non-positive pid %d from %q", p, in)
			}
			got = append(got, strconv.Itoa(p))
		})
		if err != nil {
			if !errors.Is(err, ErrBadChildren) {
				t.Fatalf("error %v does not wrap ErrBadChildren", err)
			}
			return
		}
		// What parsed re-parses to the same list from its canonical form.
		var again []string
		if err := parseChildren(strings.NewReader(strings.Join(got, " ")), func(p int) { again = append(again, strconv.Itoa(p)) }); err != nil || !slices.Equal(got, again) {
			t.Fatalf("round trip of %q: %v, %v", got, again, err)
		}
	})
}
