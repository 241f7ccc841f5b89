package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/orphand/orphand/agent/config"
	"github.com/orphand/orphand/internal/testutil"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// hostBinaries builds orphand and orphanctl for the documentation checks
// (a plain build: the packages are not needed for them).
func hostBinaries(t *testing.T) (orphand, orphanctl string) {
	t.Helper()
	gotool := goTool(t)
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orphand-package-bin-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		_, binErr = command(repoRoot, "env", "CGO_ENABLED=0", gotool, "build", "-o", dir+"/", "./cmd/orphand", "./cmd/orphand-init", "./cmd/orphanctl")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "orphand"), filepath.Join(binDir, "orphanctl")
}

// section returns the indented lines after the line that starts with
// heading, up to the next line that is empty or not indented.
func section(help, heading string) []string {
	var lines []string
	in := false
	for line := range strings.Lines(help) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, heading):
			in = true
		case in && strings.HasPrefix(line, "  "):
			lines = append(lines, line)
		case in:
			return lines
		}
	}
	return lines
}

// commandsIn lists the command names of a "Commands:" section.
func commandsIn(t *testing.T, help string) []string {
	t.Helper()
	var names []string
	for _, line := range section(help, "Commands:") {
		names = append(names, strings.Fields(line)[0])
	}
	if len(names) == 0 {
		t.Fatalf("no commands found in the help:\n%s", help)
	}
	return names
}

// flagsIn lists the flags (--name, -q) of a "Flags" section.
var flagRE = regexp.MustCompile(`^  (-{1,2}[a-z][a-z0-9-]*)`)

func flagsIn(help, heading string) []string {
	var flags []string
	for _, line := range section(help, heading) {
		if m := flagRE.FindStringSubmatch(line); m != nil {
			flags = append(flags, m[1])
		}
	}
	return flags
}

// roff writes a flag the way the manual page sources do (\- for -).
func roff(flag string) string { return strings.ReplaceAll(flag, "-", `\-`) }

func readPage(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "man", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// documentsCommand: a command has its own .TP entry starting with .B name.
func documentsCommand(page, name string) bool {
	return regexp.MustCompile(`(?m)^\.B ` + regexp.QuoteMeta(name) + `\b`).MatchString(page)
}

// TestOrphanctlManPage: orphanctl(1) documents every command orphanctl
// lists and every flag of each.
func TestOrphanctlManPage(t *testing.T) {
	_, orphanctl := hostBinaries(t)
	page := readPage(t, "orphanctl.1")
	help := mustRun(t, orphanctl, "help")
	for _, flag := range []string{"--socket", "--json", "--version", "--help"} {
		if !strings.Contains(help, flag) {
			t.Errorf("orphanctl help no longer mentions the global flag %s: update this test and the page", flag)
		}
		if !strings.Contains(page, roff(flag)) {
			t.Errorf("orphanctl(1) does not document the global flag %s", flag)
		}
	}
	for _, cmd := range commandsIn(t, help) {
		if !documentsCommand(page, cmd) {
			t.Errorf("orphanctl(1) does not document the command %q (in orphanctl help)", cmd)
		}
		if cmd == "help" {
			continue
		}
		for _, flag := range flagsIn(mustRun(t, orphanctl, cmd, "--help"), "Flags:") {
			if !strings.Contains(page, roff(flag)) {
				t.Errorf("orphanctl(1) does not document %s of orphanctl %s", flag, cmd)
			}
		}
	}
}

// TestOrphandManPage: orphand(8) documents every command and serve flag,
// and every key of the configuration file.
func TestOrphandManPage(t *testing.T) {
	orphand, _ := hostBinaries(t)
	page := readPage(t, "orphand.8")
	for _, cmd := range commandsIn(t, mustRun(t, orphand, "--help")) {
		if !documentsCommand(page, cmd) {
			t.Errorf("orphand(8) does not document the command %q (in orphand --help)", cmd)
		}
	}
	flags := flagsIn(mustRun(t, orphand, "serve", "--help"), "Flags")
	if len(flags) == 0 {
		t.Fatal("found no flags in orphand serve --help")
	}
	for _, flag := range flags {
		if !strings.Contains(page, `.BI `+roff(flag)) && !strings.Contains(page, `.B `+roff(flag)) {
			t.Errorf("orphand(8) has no entry for the flag %s of orphand serve", flag)
		}
	}
	for _, key := range configKeys(t) {
		name := key[strings.LastIndex(key, ".")+1:]
		if !regexp.MustCompile(`(?m)^\.BR? (.* )?"?` + name + `\b`).MatchString(page) {
			t.Errorf("orphand(8) has no entry for the configuration key %s", key)
		}
	}
}

// TestOrphandInitManPage: orphand-init(1) documents every flag and
// environment variable of orphand-init --help.
func TestOrphandInitManPage(t *testing.T) {
	hostBinaries(t)
	page := readPage(t, "orphand-init.1")
	help := mustRun(t, filepath.Join(binDir, "orphand-init"), "--help")
	var flags []string
	for _, line := range section(help, "Flags") {
		col, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
		for _, m := range initFlagRE.FindAllStringSubmatch(col, -1) {
			flags = append(flags, m[2])
		}
	}
	if len(flags) < 20 {
		t.Fatalf("found only %d flags in orphand-init --help: %q", len(flags), flags)
	}
	for _, flag := range flags {
		if !strings.Contains(page, roff(flag)) {
			t.Errorf("orphand-init(1) does not document %s", flag)
		}
	}
	for _, line := range section(help, "Environment") {
		if v := strings.Fields(line)[0]; !strings.Contains(page, ".B "+v) {
			t.Errorf("orphand-init(1) does not document the environment variable %s", v)
		}
	}
}

// initFlagRE finds the flags in the first column of a help line.
var initFlagRE = regexp.MustCompile(`(^|[ ,])(-{1,2}[a-zA-Z][a-z0-9-]*)`)

// TestManPagesRender: man renders every page without a warning.
func TestManPagesRender(t *testing.T) {
	man := testutil.RequireCommand(t, "man")
	for _, name := range []string{"orphand.8", "orphand-init.1", "orphanctl.1"} {
		cmd := exec.Command(man, "--warnings", "-E", "UTF-8", "-l", filepath.Join("..", "man", name))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=0", "LC_ALL=C.UTF-8")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("man %s: %v\n%s", name, err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("man warns about %s:\n%s", name, stderr.String())
		}
		// Without a terminal, man still overstrikes bold: "N\bNA\bA...".
		if text := overstrike.ReplaceAllString(stdout.String(), ""); !strings.Contains(text, "NAME") {
			t.Errorf("man %s rendered no NAME section:\n%s", name, stdout.String())
		}
	}
}

var overstrike = regexp.MustCompile(".\x08")

// configKeys lists every configuration key ("limits.dead_max" for a key of
// a table), from the agent's defaults.
func configKeys(t *testing.T) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(config.Default()); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		t.Fatal(err)
	}
	return flatKeys("", m)
}

func flatKeys(prefix string, m map[string]any) []string {
	var keys []string
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			keys = append(keys, flatKeys(prefix+k+".", sub)...)
			continue
		}
		keys = append(keys, prefix+k)
	}
	slices.Sort(keys)
	return keys
}

// commentedKey is a key line of the shipped configuration, commented out.
var commentedKey = regexp.MustCompile(`(?m)^#([a-z_]+ = .*)$`)

// TestDefaultConfigFile: the shipped /etc/orphand/orphand.toml is valid and
// changes nothing; with every key uncommented it still equals the defaults,
// and it names every key the agent has.
func TestDefaultConfigFile(t *testing.T) {
	text, err := os.ReadFile("../orphand.toml")
	if err != nil {
		t.Fatal(err)
	}
	f := config.Default()
	if err := config.Parse(bytes.NewReader(text), &f); err != nil {
		t.Fatalf("the shipped file does not parse: %v", err)
	}
	if f != config.Default() {
		t.Errorf("the shipped file changes the defaults:\n got %+v\nwant %+v", f, config.Default())
	}

	uncommented := commentedKey.ReplaceAllString(string(text), "$1")
	var all config.File // zero: every value must come from the file
	if err := config.Parse(strings.NewReader(uncommented), &all); err != nil {
		t.Fatalf("the shipped file with its keys uncommented does not parse: %v", err)
	}
	if all != config.Default() {
		t.Errorf("the values shown in the shipped file are not the defaults:\n got %+v\nwant %+v", all, config.Default())
	}
	var m map[string]any
	if _, err := toml.Decode(uncommented, &m); err != nil {
		t.Fatal(err)
	}
	if got, want := flatKeys("", m), configKeys(t); !slices.Equal(got, want) {
		t.Errorf("the shipped file shows the keys\n  %v\nthe agent has\n  %v", got, want)
	}
}

// TestCopyrightCoversModules: the copyright file has a paragraph for every
// module linked into the binaries (they are static: each module's license
// travels with them).
func TestCopyrightCoversModules(t *testing.T) {
	gotool := goTool(t)
	out, err := command(repoRoot, gotool, "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}", "./cmd/orphand", "./cmd/orphanctl")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile("../copyright")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Files: "); ok {
			files = append(files, v)
		}
	}
	modules := strings.Fields(out)
	slices.Sort(modules)
	for _, mod := range slices.Compact(modules) {
		path := mod
		if i := strings.LastIndex(mod, "/v"); i > 0 && strings.Trim(mod[i+2:], "0123456789") == "" {
			path = mod[:i] // github.com/x/y/v2: the license covers the repository
		}
		if !slices.Contains(files, path+"/*") {
			t.Errorf("packaging/copyright has no \"Files: %s/*\" paragraph, but the binaries link %s", path, mod)
		}
	}
}

// metricsDropIn is the drop-in orphand(8) and docs/observability.md give
// for serving metrics over TCP from the sandboxed service (which has no
// network of its own); TestMetricsDropInDocumented keeps them the same.
const metricsDropIn = `[Service]
PrivateNetwork=no
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
IPAddressAllow=localhost
`

// TestMetricsDropInDocumented: the drop-in that the packaging test uses to
// serve metrics over TCP is the one orphand(8) and docs/observability.md
// give, line for line.
func TestMetricsDropInDocumented(t *testing.T) {
	for _, doc := range []string{"../man/orphand.8", "../../docs/observability.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for l := range strings.Lines(string(b)) {
			lines = append(lines, strings.TrimRight(l, "\n"))
		}
		for want := range strings.Lines(metricsDropIn) {
			if !slices.Contains(lines, strings.TrimRight(want, "\n")) {
				t.Errorf("%s does not show the drop-in line %q", doc, strings.TrimRight(want, "\n"))
			}
		}
	}
}
