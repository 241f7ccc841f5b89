package nspawn

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Options{
		Script: "true", Share: ".", Binds: []Bind{{Host: "/etc", Guest: "/mnt/etc/", ReadOnly: true}},
		Env: map[string]string{"A_1": "x"}, Units: map[string]string{"a.service": "", "a.service.d/o.conf": "", "b@.socket": ""},
	}
	binds, err := ok.validate()
	if err != nil {
		t.Fatal(err)
	}
	if len(binds) != 2 || binds[0].Guest != GuestShare || !filepath.IsAbs(binds[0].Host) || binds[1].Guest != "/mnt/etc" {
		t.Errorf("binds = %+v", binds)
	}

	for name, o := range map[string]Options{
		"no script":      {},
		"blank script":   {Script: " \n"},
		"negative":       {Script: "true", Timeout: -1},
		"relative guest": {Script: "true", Binds: []Bind{{Host: "/etc", Guest: "etc"}}},
		"no host":        {Script: "true", Binds: []Bind{{Guest: "/x"}}},
		"colon":          {Script: "true", Binds: []Bind{{Host: "/tmp/a:b", Guest: "/x"}}},
		"hides control":  {Script: "true", Binds: []Bind{{Host: "/tmp", Guest: "/mnt"}}},
		"on journal":     {Script: "true", Binds: []Bind{{Host: "/tmp", Guest: "/var/log/journal/x"}}},
		"on root":        {Script: "true", Binds: []Bind{{Host: "/tmp", Guest: "/"}}},
		"env name":       {Script: "true", Env: map[string]string{"A-B": "x"}},
		"unit name":      {Script: "true", Units: map[string]string{"../x.service": ""}},
		"unit type":      {Script: "true", Units: map[string]string{"x.conf": ""}},
		"our unit":       {Script: "true", Units: map[string]string{runUnit: ""}},
	} {
		if _, err := o.validate(); err == nil {
			t.Errorf("%s: validate accepted %+v", name, o)
		}
	}
}

// TestWrapperQuoting runs the generated wrapper's environment part in a
// real bash: values with quotes, newlines and $ must arrive unchanged.
func TestWrapperQuoting(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	env := map[string]string{"TRICKY": "it's \"quoted\" $HOME `x` \\ \n2nd line", "EMPTY": ""}
	w := wrapperText(env, false)
	head := w[:strings.Index(w, "cd /")]
	out, err := exec.Command(bash, "-c", head+`printf '%s|%s|%s' "$TRICKY" "$EMPTY" "$`+EnvInside+`"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := env["TRICKY"] + "||1"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestWriteControl(t *testing.T) {
	dir := t.TempDir()
	o := &Options{Script: "exit 0", Units: map[string]string{
		"hello.service":            "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
		"hello.socket":             "[Socket]\nListenStream=/run/x\n[Install]\nWantedBy=sockets.target\nRequiredBy=x.target\n",
		"tmpl@.service":            "[Install]\nWantedBy=multi-user.target\n",
		"hello.service.d/env.conf": "[Service]\nEnvironment=A=1\n",
	}}
	if err := writeControl(dir, o, true); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"multi-user.target.wants/" + runUnit:    "../" + runUnit,
		"multi-user.target.wants/hello.service": "../hello.service",
		"sockets.target.wants/hello.socket":     "../hello.socket",
		"x.target.requires/hello.socket":        "../hello.socket",
	} {
		got, err := os.Readlink(filepath.Join(dir, ctlUnits, link))
		if err != nil || got != target {
			t.Errorf("link %s -> %q (%v), want %q", link, got, err, target)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, ctlUnits, "multi-user.target.wants/tmpl@.service")); err == nil {
		t.Error("a template unit was enabled")
	}
	for _, f := range []string{"units/hello.service.d/env.conf", "io/script.sh", "io/wrapper.sh", "io/output", "journal"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	bad := &Options{Script: "true", Units: map[string]string{"x.service": "[Install]\nWantedBy=../../etc\n"}}
	if err := writeControl(t.TempDir(), bad, false); err == nil {
		t.Error("WantedBy=../../etc accepted")
	}
}

func TestRecipe(t *testing.T) {
	a, b := newRecipe("http://a/debian"), newRecipe("http://b/debian")
	if a.key() == b.key() || a.key() != newRecipe("http://a/debian").key() {
		t.Errorf("keys: %s %s", a.key(), b.key())
	}
	if !strings.HasPrefix(a.key(), Suite+"-") {
		t.Errorf("key %q", a.key())
	}
	args := strings.Join(a.mmdebstrapArgs("/t"), " ")
	for _, want := range []string{"--variant=minbase", "--include=dbus,dbus-user-session,libpam-systemd,perl,procps,python3,rpm,systemd,systemd-sysv,util-linux", "bookworm /t http://a/debian"} {
		if !strings.Contains(args, want) {
			t.Errorf("mmdebstrap args %q lack %q", args, want)
		}
	}
}

func TestHostMirror(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvMirror, "")
	if got := hostMirror(dir); got != fallbackMirror {
		t.Errorf("no sources: %q", got)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sources.list.d/a.sources.disabled", "Types: deb\nURIs: http://disabled/debian\nSuites: bookworm\n")
	write("sources.list.d/b.sources", "Types: deb\nURIs: http://deb822/debian\nSuites: bookworm\n")
	if got := hostMirror(dir); got != "http://deb822/debian" {
		t.Errorf("deb822: %q", got)
	}
	write("sources.list", "deb http://oneline/debian bookworm main\n")
	if got := hostMirror(dir); got != "http://oneline/debian" {
		t.Errorf("sources.list first: %q", got)
	}
	t.Setenv(EnvMirror, "http://override/debian")
	if got := hostMirror(dir); got != "http://override/debian" {
		t.Errorf("override: %q", got)
	}
}

func TestTestPattern(t *testing.T) {
	if got := testPattern("TestA/sub.1/x+y"); got != `^TestA$/^sub\.1$/^x\+y$` {
		t.Errorf("testPattern = %q", got)
	}
}

func TestGroupOwner(t *testing.T) {
	id := runID{pid: 42, start: 12345, rand: "abcd"}
	pid, start, ok := parseGroupOwner(id.group())
	if !ok || pid != 42 || start != 12345 {
		t.Errorf("parseGroupOwner(%q) = %d %d %v", id.group(), pid, start, ok)
	}
	for _, bad := range []string{"other", groupPrefix + "x-1-a", groupPrefix + "1-2", groupPrefix + "0-1-a"} {
		if _, _, ok := parseGroupOwner(bad); ok {
			t.Errorf("parseGroupOwner(%q) ok", bad)
		}
	}
	if m := id.machine(); len(m) > 64 {
		t.Errorf("machine name %q too long", m)
	}
}

func TestNoTestsWatch(t *testing.T) {
	var out bytes.Buffer
	w := &noTestsWatch{w: &out}
	for _, chunk := range []string{"=== RUN x\ntesting: warn", "ing: no tests to run\nPASS\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if !w.noTests || out.String() != "=== RUN x\ntesting: warning: no tests to run\nPASS\n" {
		t.Errorf("noTests=%v out=%q", w.noTests, out.String())
	}
}
