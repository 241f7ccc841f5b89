package e2e

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// The files each package installs (directories aside).
var (
	debFiles = []string{
		"/etc/orphand/orphand.toml",
		"/lib/systemd/system/orphand-compat.socket",
		"/lib/systemd/system/orphand.service",
		"/lib/systemd/system/orphand.socket",
		"/usr/bin/orphanctl",
		"/usr/bin/orphand-init",
		"/usr/lib/systemd/user/orphand.service",
		"/usr/lib/systemd/user/orphand.socket",
		"/usr/sbin/orphand",
		"/usr/share/bash-completion/completions/orphanctl",
		"/usr/share/doc/orphand/changelog.gz",
		"/usr/share/doc/orphand/compat.md",
		"/usr/share/doc/orphand/copyright",
		"/usr/share/fish/vendor_completions.d/orphanctl.fish",
		"/usr/share/lintian/overrides/orphand",
		"/usr/share/man/man1/orphanctl.1.gz",
		"/usr/share/man/man1/orphand-init.1.gz",
		"/usr/share/man/man8/orphand.8.gz",
		"/usr/share/zsh/vendor-completions/_orphanctl",
	}
	rpmFiles = []string{
		"/etc/orphand/orphand.toml",
		"/usr/bin/orphanctl",
		"/usr/bin/orphand-init",
		"/usr/lib/systemd/system/orphand-compat.socket",
		"/usr/lib/systemd/system/orphand.service",
		"/usr/lib/systemd/system/orphand.socket",
		"/usr/lib/systemd/user/orphand.service",
		"/usr/lib/systemd/user/orphand.socket",
		"/usr/sbin/orphand",
		"/usr/share/bash-completion/completions/orphanctl",
		"/usr/share/doc/orphand",
		"/usr/share/doc/orphand/compat.md",
		"/usr/share/fish/vendor_completions.d/orphanctl.fish",
		"/usr/share/licenses/orphand/LICENSE",
		"/usr/share/licenses/orphand/copyright",
		"/usr/share/man/man1/orphanctl.1.gz",
		"/usr/share/man/man1/orphand-init.1.gz",
		"/usr/share/man/man8/orphand.8.gz",
		"/usr/share/zsh/site-functions/_orphanctl",
	}
	executables = []string{"/usr/bin/orphanctl", "/usr/bin/orphand-init", "/usr/sbin/orphand"}
)

// debArch and rpmArch name this machine's architecture as build.sh does.
var (
	debArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf", "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}[runtime.GOARCH]
	rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i386", "arm": "armv7hl", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}[runtime.GOARCH]
)

func TestPackageNames(t *testing.T) {
	b := packages(t)
	if want := "orphand_" + b.version + "_" + debArch + ".deb"; filepath.Base(b.deb) != want {
		t.Errorf("deb is %s, want %s", filepath.Base(b.deb), want)
	}
	if want := "orphand-" + b.version + "." + rpmArch + ".rpm"; filepath.Base(b.rpm) != want {
		t.Errorf("rpm is %s, want %s", filepath.Base(b.rpm), want)
	}
}

// TestDebPackage checks the .deb's control data, contents, conffiles and
// maintainer scripts, and runs its binaries.
func TestDebPackage(t *testing.T) {
	testutil.RequireCommand(t, "dpkg-deb")
	b := packages(t)
	for field, want := range map[string]string{
		"Package": "orphand", "Version": b.version, "Architecture": debArch, "Section": "admin",
		"Priority": "optional", "Homepage": "https://github.com/orphand/orphand",
	} {
		if got := strings.TrimSpace(mustRun(t, "dpkg-deb", "-f", b.deb, field)); got != want {
			t.Errorf("control field %s = %q, want %q", field, got, want)
		}
	}
	if got := strings.TrimSpace(mustRun(t, "dpkg-deb", "-f", b.deb, "Depends")); got != "" {
		t.Errorf("Depends = %q: the binaries are static and need nothing", got)
	}
	if got := strings.TrimSpace(mustRun(t, "dpkg-deb", "-I", b.deb, "conffiles")); got != "/etc/orphand/orphand.toml" {
		t.Errorf("conffiles = %q, want only /etc/orphand/orphand.toml", got)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		got := mustRun(t, "dpkg-deb", "-I", b.deb, script)
		want, err := os.ReadFile(filepath.Join("..", "deb", script))
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("the package's %s differs from packaging/deb/%s", script, script)
		}
	}
	if out, err := command("", "dpkg-deb", "-I", b.deb, "preinst"); err == nil {
		t.Errorf("the package has a preinst; none is expected:\n%s", out)
	}

	var files []string
	for line := range strings.Lines(mustRun(t, "dpkg-deb", "-c", b.deb)) {
		// -rwxr-xr-x root/root 5124258 2026-11-21 21:13 ./usr/sbin/orphand
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue
		}
		name := strings.TrimPrefix(f[5], ".")
		files = append(files, name)
		mode := "-rw-r--r--"
		if slices.Contains(executables, name) {
			mode = "-rwxr-xr-x"
		}
		if f[0] != mode || f[1] != "root/root" {
			t.Errorf("%s is %s %s, want %s root/root", name, f[0], f[1], mode)
		}
	}
	slices.Sort(files)
	if !slices.Equal(files, debFiles) {
		t.Errorf("the .deb installs\n  %s\nwant\n  %s", strings.Join(files, "\n  "), strings.Join(debFiles, "\n  "))
	}

	root := t.TempDir()
	mustRun(t, "dpkg-deb", "-x", b.deb, root)
	checkTree(t, root, b.version)
}

// checkTree checks the installed files of a package unpacked at root.
func checkTree(t *testing.T, root, version string) {
	t.Helper()
	for _, exe := range executables {
		f, err := elf.Open(filepath.Join(root, exe))
		if err != nil {
			t.Fatalf("%s: %v", exe, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked; the packages ship static binaries (CGO_ENABLED=0)", exe)
			}
		}
		f.Close()
	}
	if got := strings.TrimSpace(mustRun(t, filepath.Join(root, "usr/sbin/orphand"), "version")); got != version {
		t.Errorf("orphand version = %q, want the package version %q", got, version)
	}
	if got := strings.TrimSpace(mustRun(t, filepath.Join(root, "usr/bin/orphanctl"), "--version")); got != "orphanctl "+version {
		t.Errorf("orphanctl --version = %q, want \"orphanctl %s\"", got, version)
	}
	if got := strings.TrimSpace(mustRun(t, filepath.Join(root, "usr/bin/orphand-init"), "--version")); got != "orphand-init "+version {
		t.Errorf("orphand-init --version = %q, want \"orphand-init %s\"", got, version)
	}
	for _, page := range []string{"usr/share/man/man8/orphand.8.gz", "usr/share/man/man1/orphanctl.1.gz", "usr/share/man/man1/orphand-init.1.gz"} {
		text := gunzip(t, filepath.Join(root, page))
		if strings.Contains(text, "@DATE@") || strings.Contains(text, "@VERSION@") {
			t.Errorf("%s: placeholders left in the page", page)
		}
		if !strings.Contains(text, `"orphand `+version+`"`) {
			t.Errorf("%s: the .TH line does not carry the version %s", page, version)
		}
	}
	comp, err := os.ReadFile(filepath.Join(root, "usr/share/bash-completion/completions/orphanctl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(comp), "complete -F _orphanctl orphanctl") {
		t.Errorf("the bash completion does not register itself for orphanctl:\n%s", comp)
	}
	checkShellCompletions(t, root)
}

// checkShellCompletions: the zsh completion (in Debian's or Fedora's
// vendor directory, whichever the package uses) and the fish one are
// orphanctl's and parse in their shells.
func checkShellCompletions(t *testing.T, root string) {
	t.Helper()
	zsh := ""
	for _, p := range []string{"usr/share/zsh/vendor-completions/_orphanctl", "usr/share/zsh/site-functions/_orphanctl"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			zsh = filepath.Join(root, p)
		}
	}
	fish := filepath.Join(root, "usr/share/fish/vendor_completions.d/orphanctl.fish")
	for _, c := range []struct{ shell, file, first, check string }{
		{"zsh", zsh, "#compdef orphanctl", "-n"},
		{"fish", fish, "# fish completion for orphanctl", "--no-execute"},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Errorf("%s completion: %v", c.shell, err)
			continue
		}
		if !strings.HasPrefix(string(b), c.first) {
			t.Errorf("the %s completion does not start with %q:\n%s", c.shell, c.first, b)
		}
		mustRun(t, testutil.RequireCommand(t, c.shell), c.check, c.file)
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// TestLintian: no error and no warning on the .deb (the overrides shipped
// in the package are the only exceptions, each justified there).
func TestLintian(t *testing.T) {
	lintian := testutil.RequireCommand(t, "lintian")
	b := packages(t)
	out, err := command("", lintian, "--fail-on", "error,warning", "--info", "--display-info", b.deb)
	if err != nil {
		t.Fatalf("lintian found errors or warnings:\n%s%v", out, err)
	}
	if strings.TrimSpace(out) != "" {
		t.Logf("lintian (informational tags only):\n%s", out)
	}
}

// TestRPMPackage checks the .rpm with rpm itself: digests, metadata, file
// list, file flags and the scriptlets.
func TestRPMPackage(t *testing.T) {
	rpm := testutil.RequireCommand(t, "rpm")
	b := packages(t)
	if out := mustRun(t, rpm, "-K", b.rpm); !strings.Contains(out, "digests OK") {
		t.Errorf("rpm -K: %s", out)
	}
	want := "orphand " + b.version + " " + rpmArch + " MIT"
	if got := mustRun(t, rpm, "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH} %{LICENSE}", b.rpm); got != want {
		t.Errorf("rpm -qp: %q, want %q", got, want)
	}
	files := strings.Fields(mustRun(t, rpm, "-qlp", b.rpm))
	if !slices.Equal(files, rpmFiles) {
		t.Errorf("rpm -qlp:\n  %s\nwant\n  %s", strings.Join(files, "\n  "), strings.Join(rpmFiles, "\n  "))
	}
	// FILEFLAGS: c = %config, n = noreplace, l = %license.
	flags := map[string]string{}
	for line := range strings.Lines(mustRun(t, rpm, "-qp", "--qf", "[%{FILENAMES}|%{FILEFLAGS:fflags}|%{FILEMODES:perms}|%{FILEUSERNAME}:%{FILEGROUPNAME}\n]", b.rpm)) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 4 {
			t.Fatalf("rpm --qf: unexpected line %q", line)
		}
		flags[f[0]] = f[1]
		mode := "-rw-r--r--"
		switch {
		case slices.Contains(executables, f[0]):
			mode = "-rwxr-xr-x"
		case strings.HasPrefix(f[2], "d"):
			mode = "drwxr-xr-x" // a directory the package owns
		}
		if f[2] != mode || f[3] != "root:root" {
			t.Errorf("%s is %s %s, want %s root:root", f[0], f[2], f[3], mode)
		}
	}
	if got := flags["/etc/orphand/orphand.toml"]; got != "cn" {
		t.Errorf("/etc/orphand/orphand.toml has flags %q, want cn (%%config(noreplace))", got)
	}
	for _, lic := range []string{"/usr/share/licenses/orphand/LICENSE", "/usr/share/licenses/orphand/copyright"} {
		if got := flags[lic]; got != "l" {
			t.Errorf("%s has flags %q, want l (%%license)", lic, got)
		}
	}

	scripts := mustRun(t, rpm, "-qp", "--scripts", b.rpm)
	for heading, file := range map[string]string{
		"postinstall scriptlet": "post", "preuninstall scriptlet": "preun", "postuninstall scriptlet": "postun",
	} {
		body, err := os.ReadFile(filepath.Join("..", "rpm", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(scripts, heading) || !strings.Contains(scripts, strings.TrimSpace(string(body))) {
			t.Errorf("rpm --scripts has no %s with packaging/rpm/%s:\n%s", heading, file, scripts)
		}
	}
	for _, none := range []string{"preinstall scriptlet", "pretrans", "posttrans"} {
		if strings.Contains(scripts, none) {
			t.Errorf("rpm --scripts shows a %s; none is expected", none)
		}
	}
}

// TestReproducible: building the same commit again gives the same bytes
// (every file dated by the commit, gzip -n, -trimpath, no build id).
func TestReproducible(t *testing.T) {
	b := packages(t)
	gotool := goTool(t)
	dir := t.TempDir()
	out, err := command(repoRoot, "env", "GO="+gotool, "sh", "packaging/build.sh", "-o", dir, "-v", b.version)
	if err != nil {
		t.Fatal(err)
	}
	for _, first := range []string{b.deb, b.rpm} {
		again := filepath.Join(dir, filepath.Base(first))
		if !strings.Contains(out, again) {
			t.Fatalf("the second build did not make %s:\n%s", again, out)
		}
		x, err := os.ReadFile(first)
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of the same commit", filepath.Base(first))
		}
	}
}
