package nspawn

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Environment variables that change where and how the rootfs is built.
const (
	// EnvCache overrides DefaultCacheDir.
	EnvCache = "ORPHAND_NSPAWN_CACHE"
	// EnvMirror overrides the Debian mirror found in the host's apt sources.
	EnvMirror = "ORPHAND_NSPAWN_MIRROR"
)

// DefaultCacheDir holds built root filesystems, one directory per recipe.
const DefaultCacheDir = "/var/cache/orphand-test"

// fallbackMirror is used when the host's apt sources name no Debian archive.
const fallbackMirror = "http://deb.debian.org/debian"

// recipeVersion changes whenever what the build does changes in a way the
// other recipe fields do not show (hooks, layout), so old caches are not reused.
const recipeVersion = 1

// Packages is the pinned list installed on top of Debian's minbase variant.
// Callers may rely on every one of them being in the container:
//
//	systemd systemd-sysv dbus  systemd as PID 1 and a system bus
//	procps util-linux          ps, pgrep, kill, setpriv, unshare, nsenter
//	perl                       perl with JSON::PP and IO::Socket::UNIX (example clients)
//	python3                    python3 with its standard library (json,
//	                           socket) for example clients; python3-minimal
//	                           alone has no json module
//	rpm                        rpm, to query or install the .rpm package
//	dbus-user-session          a user bus for each user manager
//	                           (user@UID.service), and with it
//	libpam-systemd             pam_systemd, which gives a user manager
//	                           its XDG_RUNTIME_DIR: the per-user agent's
//	                           tests need both
var Packages = []string{"dbus", "dbus-user-session", "libpam-systemd", "perl", "procps", "python3", "rpm", "systemd", "systemd-sysv", "util-linux"}

// Suite is the Debian release the container runs (systemd 252).
const Suite = "bookworm"

// recipe is everything that determines the content of a rootfs. Its text is
// hashed into the cache key, so changing any field builds a new rootfs.
type recipe struct {
	Version  int
	Suite    string
	Variant  string
	Arch     string
	Mirror   string
	Include  []string
	DpkgOpts []string
	Hooks    []string // --customize-hook commands, run with the rootfs as $1
}

func newRecipe(mirror string) recipe {
	return recipe{
		Version: recipeVersion,
		Suite:   Suite,
		Variant: "minbase",
		Arch:    debianArch(runtime.GOARCH),
		Mirror:  mirror,
		Include: slices.Sorted(slices.Values(Packages)),
		// Speed and size only: these are removed again by the first hook
		// below, so that a package installed inside later (dpkg -i of
		// orphand's .deb) keeps its docs and locales like on a real host.
		DpkgOpts: []string{
			"force-unsafe-io",
			"path-exclude=/usr/share/man/*",
			"path-exclude=/usr/share/doc/*",
			"path-exclude=/usr/share/locale/*",
			"path-exclude=/usr/share/info/*",
		},
		Hooks: []string{
			`rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"`,
			// mmdebstrap copies the build host's name; without the file the
			// container keeps the machine name nspawn gives it.
			`rm -f "$1/etc/hostname"`,
			// apt-daily, dpkg-db-backup, e2scrub_all, fstrim: a timer that
			// fires during a test would run a job that fails without
			// network and turn the system "degraded". Tests may still
			// start them by hand.
			`rm -f "$1"/etc/systemd/system/timers.target.wants/*`,
		},
	}
}

// text is the canonical form of the recipe, hashed for the key and stored
// next to the rootfs for humans.
func (r recipe) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d\nsuite %s\nvariant %s\narch %s\nmirror %s\n", r.Version, r.Suite, r.Variant, r.Arch, r.Mirror)
	fmt.Fprintf(&b, "include %s\n", strings.Join(r.Include, ","))
	for _, o := range r.DpkgOpts {
		fmt.Fprintf(&b, "dpkgopt %s\n", o)
	}
	for _, h := range r.Hooks {
		fmt.Fprintf(&b, "hook %s\n", h)
	}
	return b.String()
}

// key names the cache directory of this recipe.
func (r recipe) key() string {
	sum := sha256.Sum256([]byte(r.text()))
	return r.Suite + "-" + hex.EncodeToString(sum[:])[:16]
}

// mmdebstrapArgs builds the command line that bootstraps the rootfs into target.
func (r recipe) mmdebstrapArgs(target string) []string {
	args := []string{
		"--mode=root", "--format=directory", "--variant=" + r.Variant,
		"--architectures=" + r.Arch, "--components=main",
		"--include=" + strings.Join(r.Include, ","),
	}
	for _, o := range r.DpkgOpts {
		args = append(args, "--dpkgopt="+o)
	}
	for _, h := range r.Hooks {
		args = append(args, "--customize-hook="+h)
	}
	return append(args, r.Suite, target, r.Mirror)
}

// debianArch maps GOARCH to Debian's architecture name.
func debianArch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	default:
		return goarch
	}
}

// cacheDir is where built root filesystems live.
func cacheDir() string {
	if d := os.Getenv(EnvCache); d != "" {
		return d
	}
	return DefaultCacheDir
}

// hostMirror returns the mirror to bootstrap from: $ORPHAND_NSPAWN_MIRROR,
// else the one in the host's apt sources (/etc/apt/sources.list, then
// sources.list.d/*.list and *.sources in name order, as apt reads them),
// else fallbackMirror.
func hostMirror(aptDir string) string {
	if m := os.Getenv(EnvMirror); m != "" {
		return m
	}
	var sources []aptSource
	if f, err := os.Open(filepath.Join(aptDir, "sources.list")); err == nil {
		sources = append(sources, parseOneLineSources(f)...)
		f.Close()
	}
	names, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*"))
	slices.Sort(names)
	for _, name := range names {
		var parse func(*os.File) []aptSource
		switch {
		case strings.HasSuffix(name, ".list"):
			parse = func(f *os.File) []aptSource { return parseOneLineSources(f) }
		case strings.HasSuffix(name, ".sources"):
			parse = func(f *os.File) []aptSource { return parseDeb822Sources(f) }
		default:
			continue // apt ignores other names too (.disabled, .save, ...)
		}
		if f, err := os.Open(name); err == nil {
			sources = append(sources, parse(f)...)
			f.Close()
		}
	}
	if m, ok := pickMirror(sources, Suite); ok {
		return m
	}
	return fallbackMirror
}
