package policy

import (
	"errors"
	"testing"

	"github.com/orphand/orphand/ipc"
)

func TestConnRootReserve(t *testing.T) {
	l := Limits{ConnsPerUID: 100, ConnsTotal: 10, ConnsRootReserve: 3}
	root, alice := Caller{UID: 0}, Caller{UID: 1000}
	tests := []struct {
		name   string
		caller Caller
		u      Usage
		want   string
	}{
		{"users below the reserve", alice, Usage{Total: 6, NotRoot: 6}, ""},
		{"users reach the reserve", alice, Usage{Total: 7, NotRoot: 7}, ipc.LimitConnsTotal},
		{"root's connections do not squeeze users", alice, Usage{Total: 8, NotRoot: 5}, ""},
		{"but the total holds for users too", alice, Usage{Total: 10, NotRoot: 5}, ipc.LimitConnsTotal},
		{"root inside the reserve", root, Usage{Total: 7, NotRoot: 7}, ""},
		{"root takes the last one", root, Usage{Total: 9, NotRoot: 7}, ""},
		{"root past the total", root, Usage{Total: 10, NotRoot: 7}, ipc.LimitConnsTotal},
	}
	for _, tt := range tests {
		err := l.AllowConn(tt.caller, tt.u)
		var le *LimitError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.want != "" && (!errors.As(err, &le) || le.Limit != tt.want || le.Max != l.ConnsTotal):
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestTargetsTotal(t *testing.T) {
	l := Limits{TargetsPerWatch: 10, TargetsPerUID: 10, TargetsTotal: 15}
	root, alice := Caller{UID: 0}, Caller{UID: 1000}
	var le *LimitError
	if err := l.AllowTargets(alice, 0, 5, Usage{Mine: 5, Total: 12}); !errors.As(err, &le) || le.Limit != ipc.LimitTargetsTotal {
		t.Errorf("user over the total: %v", err)
	}
	if err := l.AllowTargets(root, 0, 5, Usage{Mine: 50, Total: 11}); !errors.As(err, &le) || le.Limit != ipc.LimitTargetsTotal {
		t.Errorf("root over the total: %v", err)
	}
	if err := l.AllowTargets(alice, 0, 5, Usage{Mine: 5, Total: 10}); err != nil {
		t.Errorf("fits: %v", err)
	}
}

func TestValidateLimits(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, bad := range []Limits{
		{ConnsTotal: 5, ConnsRootReserve: 5},
		{GroupsPerUID: -1},
		{ConnsRootReserve: -1},
		{TargetsTotal: -2},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := (Limits{ConnsRootReserve: 5}).Validate(); err != nil {
		t.Errorf("a reserve without a total is harmless: %v", err)
	}
}

func TestFitFiles(t *testing.T) {
	d := DefaultLimits()
	need, ok := d.FilesNeeded()
	if !ok || need != d.GroupsTotal+d.TargetsTotal+2*d.ConnsTotal {
		t.Fatalf("FilesNeeded = %d, %v", need, ok)
	}
	if got, changed := d.FitFiles(need); changed || got != d {
		t.Fatalf("limits that fit were changed: %+v", got)
	}
	for _, budget := range []int{19000, 1000, 10, 0, -5} {
		got, changed := d.FitFiles(budget)
		if !changed {
			t.Fatalf("budget %d: not changed", budget)
		}
		n, _ := got.FilesNeeded()
		if n > max(budget, 4)+3 || got.GroupsTotal < 1 || got.ConnsTotal < 1 || got.TargetsTotal < 1 {
			t.Errorf("budget %d: %+v needs %d", budget, got, n)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("budget %d: fitted limits invalid: %v", budget, err)
		}
		if got.GroupsPerUID != d.GroupsPerUID || got.ConnsPerUID != d.ConnsPerUID {
			t.Errorf("budget %d: per-uid limits changed: %+v", budget, got)
		}
	}
	unlimited := d
	unlimited.ConnsTotal = 0
	if _, ok := unlimited.FilesNeeded(); ok {
		t.Fatal("an unlimited total has no bound")
	}
	if got, changed := unlimited.FitFiles(10); changed || got != unlimited {
		t.Fatal("unlimited totals cannot be fitted")
	}
}

func TestFitFilesKeepsSmallTotals(t *testing.T) {
	l := DefaultLimits()
	l.GroupsTotal = 2
	got, changed := l.FitFiles(19000)
	if !changed || got.GroupsTotal != 2 {
		t.Fatalf("a small total was lowered: %+v", got)
	}
	// The rest is shared evenly: connections get 9498 descriptors (two
	// each), targets what is left.
	if got.ConnsTotal != 4749 || got.TargetsTotal != 19000-2-9498 {
		t.Fatalf("uneven share: %+v", got)
	}
}
