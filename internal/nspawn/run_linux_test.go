package nspawn

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunSmoke(t *testing.T) {
	Require(t)
	var out bytes.Buffer
	code, err := Run(t.Context(), Options{Script: "echo hello from $(hostname); systemctl is-system-running --wait; exit 3", Output: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Fatalf("code %d, want 3", code)
	}
	if !strings.Contains(out.String(), "hello from orphand-") {
		t.Fatal("no output")
	}
}
