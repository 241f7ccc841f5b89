package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// version runs packaging/version.sh with args.
func version(args ...string) (string, error) {
	out, err := command("..", "sh", append([]string{"version.sh"}, args...)...)
	return strings.TrimSpace(out), err
}

// TestVersionFromDescribe: git describe outputs become package versions.
func TestVersionFromDescribe(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-5-gabc1234", "1.2.3+5.gabc1234"},
		{"v1.2.3-dirty", "1.2.3+0.dirty"},
		{"v1.2.3-5-gabc1234-dirty", "1.2.3+5.gabc1234.dirty"},
		{"v1.3.0-rc.1", "1.3.0~rc.1"},
		{"v1.3.0-rc.1-2-gabc1234", "1.3.0~rc.1+2.gabc1234"},
		{"v10.0.0-beta-3-g0123abc", "10.0.0~beta+3.g0123abc"},
		{"untagged 48 e58aa0b", "0.0.0+48.ge58aa0b"},
		{"untagged-dirty 48 e58aa0b", "0.0.0+48.ge58aa0b.dirty"},
	} {
		got, err := version(strings.Fields(c.args)...)
		if err != nil || got != c.want {
			t.Errorf("version.sh %s = %q (%v), want %q", c.args, got, err, c.want)
		}
	}
	for _, bad := range []string{"1.2.3", "release-1", "v1.2.3-bad_tag", "untagged", "vx"} {
		if got, err := version(bad); err == nil {
			t.Errorf("version.sh %s = %q, want an error", bad, got)
		}
	}
}

// TestVersionOrder: the versions of successive commits and tags increase
// for dpkg and for rpm alike.
func TestVersionOrder(t *testing.T) {
	dpkg := testutil.RequireCommand(t, "dpkg")
	rpm := testutil.RequireCommand(t, "rpm")
	// In the order a project's history makes them.
	describes := []string{
		"untagged 5 abc1234", "untagged-dirty 5 abc1234", "untagged 6 def5678", "untagged 10 0a1b2c3",
		"v0.1.0-rc.1", "v0.1.0-rc.1-1-gabc1234", "v0.1.0-rc.2",
		"v0.1.0", "v0.1.0-dirty", "v0.1.0-1-gabc1234", "v0.1.0-1-gabc1234-dirty", "v0.1.0-2-gdef5678",
		"v0.1.0-10-g0a1b2c3", "v0.1.1", "v0.10.0",
	}
	var versions []string
	for _, d := range describes {
		v, err := version(strings.Fields(d)...)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	older := func(a, b string) {
		t.Helper()
		if err := exec.Command(dpkg, "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg: %s is not older than %s", a, b)
		}
		out, err := exec.Command(rpm, "--eval", `%{lua: print(rpm.vercmp("`+a+`", "`+b+`"))}`).Output()
		if err != nil || strings.TrimSpace(string(out)) != "-1" {
			t.Errorf("rpm: %s is not older than %s (vercmp %q, %v)", a, b, out, err)
		}
	}
	for i, v := range versions {
		if i > 0 {
			older(versions[i-1], v)
		}
		older(v, v+upgradeSuffix) // what the upgrade tests install
	}
}

// TestCheckoutVersion: this checkout's version is valid for both formats.
func TestCheckoutVersion(t *testing.T) {
	testutil.RequireCommand(t, "git")
	v, err := version()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(v) {
		t.Errorf("version.sh = %q: not a valid dpkg and rpm version", v)
	}
}
