package orphand_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is this module's path: imports that start with it are arrows
// between the repository's own packages.
const module = "github.com/orphand/orphand"

// importRule is one line of docs/ARCHITECTURE.md's import rules: packages
// matching from may import, of the module's packages, only those matching
// only (when only is not nil; their own subtree always), and never those
// matching deny. A pattern is a path relative to the module root; "x/..."
// matches x and every package below it. Rules marked prod apply to
// non-test files only; test files may also import the test helpers
// internal/testutil and internal/nspawn.
type importRule struct {
	from   []string
	only   []string
	deny   []string
	exempt []string // importers matching from that the rule leaves alone
	prod   bool
	why    string
}

var importRules = []importRule{
	{
		from: []string{"proctree/..."}, only: []string{},
		why: "proctree is the bottom: the kernel's view of processes, nothing of orphand",
	},
	{
		from: []string{"family/..."}, only: []string{},
		why: "family stands alone: it shares nothing with the agent or its protocol",
	},
	{
		from: []string{"ipc/..."}, only: []string{},
		why: "ipc is the protocol and its client: every client links it, so it carries nothing else",
	},
	{
		from: []string{"policy/..."}, only: []string{"ipc"},
		why: "policy decides from facts it is given; it names its limits as the protocol does",
	},
	{
		from: []string{"internal/peercred/..."}, only: []string{"proctree/..."},
		why: "peer credentials are read with proctree and nothing of the agent, for every socket the agent serves",
	},
	{
		from: []string{"internal/journald/..."}, only: []string{},
		why: "the journal's native protocol is a leaf: any binary's logger may use it",
	},
	{
		from: []string{"agent/internal/..."}, only: []string{"ipc", "internal/sdfdstore", "internal/sdmanager"},
		why: "the agent's leaf mechanisms know nothing of groups",
	},
	{
		from: []string{"agent/compat/..."}, only: []string{"ipc", "agent/internal/...", "internal/peercred", "proctree"},
		why: "the compatibility socket's server speaks the old protocol and knows nothing of groups: the agent is its handler",
	},
	{
		from: []string{"cgroup/..."}, deny: []string{"agent/...", "ipc/...", "policy/...", "family/...", "pid1/...", "cmd/..."},
		why: "cgroup knows no daemon and no protocol: the agent uses it, not the other way",
	},
	{
		from: []string{"ipc/...", "cmd/orphanctl/...", "family/...", "examples/..."}, deny: []string{"agent/..."},
		why: "clients never link the agent",
	},
	{
		from: []string{"pid1/...", "cmd/orphand-init/..."}, deny: []string{"agent/...", "ipc/...", "cgroup/usage/..."},
		why: "orphand init is a container's PID 1: it needs no agent, speaks no protocol and reads no usage (containerd/cgroups' weight; orphand-init's binary stays small)",
	},
	{
		from:   []string{"..."},
		deny:   []string{"internal/testutil/...", "internal/nspawn/...", "e2e/...", "cgroup/internal/cgtest/...", "internal/regpath/..."},
		exempt: []string{"internal/testutil/...", "internal/nspawn/...", "e2e/...", "cgroup/internal/cgtest/...", "internal/regpath/..."},
		prod:   true,
		why:    "test support stays out of the product (internal/regpath, a measuring tool, may use it)",
	},
}

// testHelpers may be imported by any test file.
var testHelpers = []string{"internal/testutil/...", "internal/nspawn/..."}

func matches(pkg string, patterns []string) bool {
	for _, p := range patterns {
		if p == "..." || pkg == p || strings.HasSuffix(p, "/...") &&
			(pkg == strings.TrimSuffix(p, "/...") || strings.HasPrefix(pkg, strings.TrimSuffix(p, "..."))) {
			return true
		}
	}
	return false
}

// brokenRules returns the rules the arrow from → to breaks (both relative
// to the module root); test says whether the import is in a test file.
func brokenRules(from, to string, test bool) []importRule {
	if test && (matches(to, testHelpers) || to == from) {
		return nil
	}
	var broken []importRule
	for _, r := range importRules {
		if !matches(from, r.from) || matches(from, r.exempt) || (r.prod && test) {
			continue
		}
		own := slices.ContainsFunc(r.from, func(p string) bool { return p != "..." && matches(to, []string{p}) })
		switch {
		case matches(to, r.deny):
			broken = append(broken, r)
		case r.only != nil && !own && !matches(to, r.only):
			broken = append(broken, r)
		}
	}
	return broken
}

// TestImportRules fails when a Go file of the module imports a package of
// the module that docs/ARCHITECTURE.md says its package may not.
func TestImportRules(t *testing.T) {
	arrows := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		from := filepath.ToSlash(filepath.Dir(path))
		test := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			to, ok := strings.CutPrefix(p, module+"/")
			if !ok {
				if p == module {
					to = "."
				} else {
					continue
				}
			}
			arrows++
			for _, r := range brokenRules(from, to, test) {
				t.Errorf("%s imports %s: %s (docs/ARCHITECTURE.md)", path, to, r.why)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if arrows == 0 {
		t.Fatal("found no imports of the module's packages; is the test running from the module root?")
	}
}

// TestImportRulesCatchForbiddenArrows: each rule fires on the arrow it
// forbids, and lets the allowed ones through.
func TestImportRulesCatchForbiddenArrows(t *testing.T) {
	for _, a := range []struct {
		from, to string
		test     bool
	}{
		{"proctree", "agent", false},
		{"proctree", "internal/signame", false},
		{"proctree", "cgroup", true},
		{"cgroup", "agent", false},
		{"cgroup/systemd", "agent/state", false},
		{"cgroup", "ipc", false},
		{"cgroup/proc", "ipc", true},
		{"ipc", "agent", false},
		{"cmd/orphanctl", "agent", false},
		{"examples/goclient", "agent/config", false},
		{"family", "internal/peercred", false},
		{"family", "ipc", false},
		{"agent/internal/wire", "agent", false},
		{"agent/internal/workqueue", "cgroup", false},
		{"internal/peercred", "agent", false},
		{"policy", "agent", false},
		{"pid1", "agent", false},
		{"pid1", "cgroup/usage", false},
		{"cmd/orphand-init", "agent", false},
		{"cmd/orphand-init", "cgroup/usage", false},
		{"internal/journald", "internal/signame", false},
		{"agent", "internal/testutil", false},
		{"cmd/orphand", "internal/nspawn", false},
		{"agent/compat", "agent", false},
		{"agent/compat", "policy", false},
		{"agent/compat", "cgroup", false},
	} {
		if len(brokenRules(a.from, a.to, a.test)) == 0 {
			t.Errorf("%s → %s (test file %v) breaks no rule", a.from, a.to, a.test)
		}
	}
	for _, a := range []struct {
		from, to string
		test     bool
	}{
		{"agent", "cgroup", false},
		{"agent", "agent/internal/wire", false},
		{"cgroup", "proctree", false},
		{"cgroup/auto", "cgroup/systemd", false},
		{"proctree/internal/testbin", "proctree", false},
		{"proctree", "internal/testutil", true},
		{"family", "internal/testutil", true},
		{"cgroup", "cgroup/internal/cgtest", true},
		{"cmd/orphanctl", "ipc", false},
		{"internal/peercred", "proctree", false},
		{"policy", "ipc", false},
		{"agent", "cgroup/usage", false},
		{"cmd/orphand", "internal/journald", false},
		{"agent", "agent/internal/promexport", false},
		{"internal/regpath", "internal/testutil", false},
		{"e2e/internal/harness", "internal/testutil", false},
		{"agent/compat", "internal/peercred", false},
		{"agent/compat", "agent/internal/ratelog", false},
		{"agent", "agent/compat", false},
	} {
		if r := brokenRules(a.from, a.to, a.test); len(r) > 0 {
			t.Errorf("%s → %s (test file %v) breaks the rule %q", a.from, a.to, a.test, r[0].why)
		}
	}
}

// heavyModules are third-party modules only some packages may import
// (test files aside): each brings dependencies of its own, and a binary
// runs the initialisation of every package it links.
var heavyModules = []struct {
	module string
	only   []string
	why    string
}{
	{
		module: "github.com/containerd/cgroups/", only: []string{"cgroup/usage"},
		why: "containerd/cgroups (cilium/ebpf, logrus, protobuf) parses usage, in cgroup/usage only",
	},
	{
		module: "github.com/prometheus/", only: []string{"agent", "agent/internal/promexport"},
		why: "the Prometheus client library is the agent's: its metrics and their server",
	},
}

// TestHeavyModules fails when a non-test file imports a heavy module from a
// package not allowed to.
func TestHeavyModules(t *testing.T) {
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		from := filepath.ToSlash(filepath.Dir(path))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, h := range heavyModules {
				if !strings.HasPrefix(p, h.module) {
					continue
				}
				seen[h.module] = true
				if !slices.Contains(h.only, from) {
					t.Errorf("%s imports %s: %s", path, p, h.why)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heavyModules {
		if !seen[h.module] {
			t.Errorf("no package imports %s any more: drop its rule", h.module)
		}
	}
}
