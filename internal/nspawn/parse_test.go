package nspawn

import (
	"slices"
	"strings"
	"testing"
)

const hybridMountinfo = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 22 0:50 / /mnt/with\040space rw - tmpfs tmpfs rw
`

func TestParseMountinfo(t *testing.T) {
	mounts, err := parseMountinfo(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 6 {
		t.Fatalf("got %d mounts, want 6", len(mounts))
	}
	if got := mounts[5].Point; got != "/mnt/with space" {
		t.Errorf("escaped mount point = %q, want %q", got, "/mnt/with space")
	}
	v2, v1 := cgroupMounts(mounts)
	if v2 != "/sys/fs/cgroup/unified" || v1 != "/sys/fs/cgroup/systemd" {
		t.Errorf("cgroupMounts = %q, %q", v2, v1)
	}

	unified := "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	mounts, err = parseMountinfo(strings.NewReader(unified))
	if err != nil {
		t.Fatal(err)
	}
	if v2, v1 := cgroupMounts(mounts); v2 != "/sys/fs/cgroup" || v1 != "" {
		t.Errorf("pure v2: cgroupMounts = %q, %q", v2, v1)
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	for _, in := range []string{
		"garbage\n",
		"31 23 0:28 / /sys/fs/cgroup rw,relatime tmpfs tmpfs rw\n", // no separator
		"31 23 0:28 / /x rw - tmpfs\n",                             // too short after it
	} {
		if _, err := parseMountinfo(strings.NewReader(in)); err == nil {
			t.Errorf("parseMountinfo(%q): no error", in)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:    "/a b",
		`/a\134b`:    `/a\b`,
		`/a\011\012`: "/a\t\n",
		`/a\9`:       `/a\9`,
		`/trail\04`:  `/trail\04`,
		`\`:          `\`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add("1 2 3:4 / / rw - ext4 /dev/vda rw\n")
	f.Add(`1 2 3:4 / /a\04 - - x y z`)
	f.Fuzz(func(t *testing.T, in string) {
		mounts, err := parseMountinfo(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range mounts {
			if m.FSType == "" || len(m.SuperOpts) == 0 {
				t.Fatalf("accepted an entry without type or options: %+v", m)
			}
		}
		cgroupMounts(mounts)
	})
}

const deb822 = `# comment
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`

func TestParseDeb822Sources(t *testing.T) {
	got := parseDeb822Sources(strings.NewReader(deb822))
	if len(got) != 2 {
		t.Fatalf("got %d sources, want 2: %+v", len(got), got)
	}
	if !slices.Equal(got[0].Suites, []string{"bookworm", "bookworm-updates"}) || got[0].URIs[0] != "http://deb.debian.org/debian" {
		t.Errorf("first source = %+v", got[0])
	}
	if m, ok := pickMirror(got, "bookworm"); !ok || m != "http://deb.debian.org/debian" {
		t.Errorf("pickMirror = %q, %v", m, ok)
	}

	disabled := "Enabled: no\nTypes: deb\nURIs: http://a/debian\nSuites: bookworm\n\n" +
		"Types: deb deb-src\nURIs:\n http://b/debian\n http://c/debian\nSuites: bookworm\n"
	got = parseDeb822Sources(strings.NewReader(disabled))
	if len(got) != 1 || !slices.Equal(got[0].URIs, []string{"http://b/debian", "http://c/debian"}) {
		t.Errorf("continuation lines / Enabled: no: %+v", got)
	}
}

func TestParseOneLineSources(t *testing.T) {
	in := `# deb http://commented/debian bookworm main
deb cdrom:[Debian GNU/Linux 12]/ bookworm main
deb-src http://src.example/debian bookworm main
deb [ arch=amd64 signed-by=/usr/share/keyrings/k.gpg ] https://mirror.example/debian/ bookworm main contrib
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
`
	got := parseOneLineSources(strings.NewReader(in))
	if len(got) != 4 {
		t.Fatalf("got %d sources, want 4: %+v", len(got), got)
	}
	if m, ok := pickMirror(got, "bookworm"); !ok || m != "https://mirror.example/debian/" {
		t.Errorf("pickMirror = %q, %v", m, ok)
	}
}

func TestPickMirror(t *testing.T) {
	trixie := []aptSource{
		{Types: []string{"deb"}, URIs: []string{"https://packages.cloud.google.com/apt"}, Suites: []string{"cloud-sdk"}},
		{Types: []string{"deb"}, URIs: []string{"http://ftp.example.org/debian/"}, Suites: []string{"trixie"}},
	}
	if m, ok := pickMirror(trixie, "bookworm"); !ok || m != "http://ftp.example.org/debian/" {
		t.Errorf("another release's Debian mirror: %q, %v", m, ok)
	}
	if m, ok := pickMirror(trixie[:1], "bookworm"); ok {
		t.Errorf("no Debian mirror at all: got %q", m)
	}
	if _, ok := pickMirror(nil, "bookworm"); ok {
		t.Error("empty sources: ok")
	}
}

func FuzzParseAptSources(f *testing.F) {
	f.Add(deb822)
	f.Add("deb [arch=amd64] http://x/debian bookworm main\n")
	f.Add("Types: deb\nURIs:\n  http://x/debian\nSuites: bookworm\n")
	f.Fuzz(func(t *testing.T, in string) {
		srcs := append(parseOneLineSources(strings.NewReader(in)), parseDeb822Sources(strings.NewReader(in))...)
		if m, ok := pickMirror(srcs, Suite); ok && !strings.HasPrefix(m, "http") {
			t.Fatalf("picked a non-http mirror %q", m)
		}
	})
}

func TestInstallTargets(t *testing.T) {
	unit := `[Unit]
Description=x
WantedBy=not-here.target

[Install]
# comment
WantedBy=multi-user.target  sockets.target
WantedBy=other.target
RequiredBy = needs.target
Alias=y.service
`
	wanted, required := installTargets(strings.NewReader(unit))
	if !slices.Equal(wanted, []string{"multi-user.target", "sockets.target", "other.target"}) {
		t.Errorf("WantedBy = %q", wanted)
	}
	if !slices.Equal(required, []string{"needs.target"}) {
		t.Errorf("RequiredBy = %q", required)
	}
}

func FuzzInstallTargets(f *testing.F) {
	f.Add("[Install]\nWantedBy=multi-user.target\n")
	f.Add("[Install\nRequiredBy=\n[Install]\n=\n")
	f.Fuzz(func(t *testing.T, in string) {
		wanted, required := installTargets(strings.NewReader(in))
		for _, s := range append(wanted, required...) {
			if s == "" || strings.ContainsAny(s, " \t\n") {
				t.Fatalf("target %q has space or is empty", s)
			}
		}
	})
}

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\nc\n\n\n", 1, "c"},
		{"", 3, ""},
	} {
		if got := string(lastLines([]byte(c.in), c.n)); got != c.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	tb := newTailBuffer(8)
	_, _ = tb.Write([]byte("0123456789\nabc\n"))
	if got := tb.lastLines(5); got != "789\nabc" {
		t.Errorf("tailBuffer keeps %q", got)
	}
}
