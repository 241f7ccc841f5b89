package orphand_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageHasDocComment fails when a Go package in the module has no
// package doc comment in any of its non-test files.
func TestEveryPackageHasDocComment(t *testing.T) {
	documented := map[string]bool{} // dir -> has a doc comment
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
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		documented[dir] = documented[dir] || (f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(documented) == 0 {
		t.Fatal("found no Go packages; is the test running from the module root?")
	}
	for dir, ok := range documented {
		if !ok {
			t.Errorf("package in %s has no package doc comment (add `// Package x ...` to one file, e.g. doc.go)", dir)
		}
	}
	if _, err := os.Stat("go.mod"); err != nil {
		t.Fatalf("not at module root: %v", err)
	}
}
