package cgroup_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/orphand/orphand/cgroup"
)

func TestMountRel(t *testing.T) {
	m := cgroup.Mount{Path: "/a", Root: "/sub"}
	for in, want := range map[string]string{"/sub": "/", "/sub/x/y": "/x/y"} {
		if got, err := m.Rel(in); err != nil || got != want {
			t.Errorf("Rel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/", "/subx", "/other"} {
		if got, err := m.Rel(bad); err == nil {
			t.Errorf("Rel(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got, err := cgroup.ParseProcCgroup(strings.NewReader("9:name=systemd:/\n4:memory:/x\n0::/system.slice/a b.service\n"))
	if err != nil || got != "/system.slice/a b.service" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := cgroup.ParseProcCgroup(strings.NewReader("4:memory:/x\n")); !errors.Is(err, cgroup.ErrNoUnified) {
		t.Errorf("v1 only: err = %v, want ErrNoUnified", err)
	}
	if _, err := cgroup.ParseProcCgroup(strings.NewReader("0::/gone (deleted)\n")); !errors.Is(err, cgroup.ErrNotFound) {
		t.Errorf("deleted: err = %v, want ErrNotFound", err)
	}
	if _, err := cgroup.ParseProcCgroup(strings.NewReader("0::relative\n")); err == nil {
		t.Error("accepted a relative path")
	}
}

func TestParseProcCgroupV1(t *testing.T) {
	in := "12:pids:/p\n6:cpu,freezer:/frozen/x\n1:name=systemd:/init.scope\n0::/\n"
	for ctrl, want := range map[string]string{"freezer": "/frozen/x", "cpu": "/frozen/x", "pids": "/p", "name=systemd": "/init.scope", "memory": ""} {
		got, err := cgroup.ParseProcCgroupV1(strings.NewReader(in), ctrl)
		if got != want || err != nil {
			t.Errorf("%s: %q, %v; want %q", ctrl, got, err, want)
		}
	}
	if _, err := cgroup.ParseProcCgroupV1(strings.NewReader("6:freezer:x\n"), "freezer"); err == nil {
		t.Error("a relative path was accepted")
	}
}

func TestParseEvents(t *testing.T) {
	for in, want := range map[string]cgroup.Events{
		"populated 1\nfrozen 0\n":            {Populated: true},
		"populated 0\nfrozen 1\n":            {Frozen: true},
		"populated 1\n":                      {Populated: true},
		"frozen 1\npopulated 1\nnew_key 7\n": {Populated: true, Frozen: true},
	} {
		if got, err := cgroup.ParseEvents(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("ParseEvents(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "frozen 1\n", "populated 2\n", "populated x\n"} {
		if _, err := cgroup.ParseEvents(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseEvents(%q) accepted", bad)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "0", "abc-123", "0123456789ab", strings.Repeat("a", 64)} {
		if err := cgroup.ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "A", "a/b", "../x", "/", ".", "a.b", "a_b", "a\x00", "é", strings.Repeat("a", 65), strings.Repeat("a", 4096)} {
		if err := cgroup.ValidateID(bad); !errors.Is(err, cgroup.ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add("0::/a/b\n")
	f.Add("1:name=systemd:/x\n0::/\n")
	f.Add("0::/x (deleted)\n")
	f.Add("6:freezer:/f\n4:cpu,cpuacct:/\n0::/\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := cgroup.ParseProcCgroup(strings.NewReader(in))
		if err == nil && !strings.HasPrefix(p, "/") {
			t.Fatalf("path %q is not absolute", p)
		}
		p, err = cgroup.ParseProcCgroupV1(strings.NewReader(in), "freezer")
		if err == nil && p != "" && !strings.HasPrefix(p, "/") {
			t.Fatalf("v1 path %q is not absolute", p)
		}
	})
}

func FuzzParseEvents(f *testing.F) {
	f.Add("populated 1\nfrozen 0\n")
	f.Add("populated 0\n")
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = cgroup.ParseEvents(strings.NewReader(in))
	})
}

func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/../x", "//", "/a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		parts, err := cgroup.SplitPath(in)
		if err != nil {
			return
		}
		for _, p := range parts {
			if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "/\x00") {
				t.Fatalf("SplitPath(%q) let %q through", in, p)
			}
		}
	})
}
