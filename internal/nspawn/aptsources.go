package nspawn

import (
	"bufio"
	"io"
	"slices"
	"strings"
)

// aptSource is one entry of an APT sources file, in either of its two formats
// (sources.list(5): one-line "deb URI SUITE COMP..." and deb822 ".sources").
type aptSource struct {
	Types  []string
	URIs   []string
	Suites []string
}

// parseOneLineSources reads the one-line format. Options in brackets are
// skipped; a line that is not "deb"/"deb-src" is ignored, as apt would
// reject it rather than us.
func parseOneLineSources(r io.Reader) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 || (f[0] != "deb" && f[0] != "deb-src") {
			continue
		}
		typ, rest := f[0], f[1:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
			// Options may contain spaces: "[ arch=amd64 signed-by=/k ]".
			end := slices.IndexFunc(rest, func(s string) bool { return strings.HasSuffix(s, "]") })
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		if len(rest) < 2 {
			continue
		}
		out = append(out, aptSource{Types: []string{typ}, URIs: []string{rest[0]}, Suites: []string{rest[1]}})
	}
	return out
}

// parseDeb822Sources reads the deb822 format: paragraphs of "Field: value"
// separated by blank lines; continuation lines start with white space.
// "Enabled: no" paragraphs are skipped.
func parseDeb822Sources(r io.Reader) []aptSource {
	var out []aptSource
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) > 0 && !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			s := aptSource{
				Types:  strings.Fields(fields["types"]),
				URIs:   strings.Fields(fields["uris"]),
				Suites: strings.Fields(fields["suites"]),
			}
			if len(s.Types) > 0 && len(s.URIs) > 0 && len(s.Suites) > 0 {
				out = append(out, s)
			}
		}
		fields = map[string]string{}
		last = ""
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return out
}

// pickMirror chooses the archive to bootstrap suite from: the first "deb"
// source over http(s) that carries the suite itself; failing that, the first
// "deb" source whose URI looks like a Debian archive (a host on another
// release still names a usable mirror). ok is false when nothing fits.
func pickMirror(sources []aptSource, suite string) (mirror string, ok bool) {
	var fallback string
	for _, s := range sources {
		if !slices.Contains(s.Types, "deb") {
			continue
		}
		for _, u := range s.URIs {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				continue
			}
			if slices.Contains(s.Suites, suite) {
				return u, true
			}
			if fallback == "" && strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
				fallback = u
			}
		}
	}
	return fallback, fallback != ""
}
