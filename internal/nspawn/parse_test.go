package nspawn

import (
	"slices"
	"strings"
	"testing"
)

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
