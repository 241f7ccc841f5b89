package cgroupfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
)

// Backend is the cgroupfs backend. It is safe for concurrent use.
type Backend struct {
	fs       *cgroup.FS
	root     string // where groups are created, relative to the mount
	features cgroup.Features
	log      *slog.Logger
	user     bool // a per-user agent's: no shared default root
}

var _ cgroup.Backend = (*Backend)(nil)

// Open discovers the cgroup2 mount, settles the root (creating it, and
// moving the agent into a leaf when its own delegated cgroup is used), and
// probes cgroup.kill, cgroup.freeze and whether groups can be created.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := cfg.Mount
	if m.Path == "" {
		var err error
		if m, err = cgroup.Discover(); err != nil {
			return nil, err
		}
	}
	fs, err := cgroup.OpenFS(m, cgroup.Options{NoOpenat2: cfg.NoOpenat2, NoKill: cfg.NoCgroupKill, Logger: log})
	if err != nil {
		return nil, err
	}
	b := &Backend{fs: fs, log: log, user: cfg.User}
	if err := b.setup(ctx, cfg.Root); err != nil {
		_ = fs.Close()
		return nil, err
	}
	return b, nil
}

func (b *Backend) setup(ctx context.Context, configured string) error {
	root, err := b.chooseRoot(configured)
	if err != nil {
		return err
	}
	if err := b.fs.MkdirAll(root); err != nil {
		return fmt.Errorf("%w: cgroupfs: cannot create the root cgroup %s: %w", cgroup.ErrUnavailable, b.fs.Path(root), err)
	}
	p, err := b.fs.Probe(ctx, root)
	if err != nil {
		return fmt.Errorf("%w: cgroupfs: %w", cgroup.ErrUnavailable, err)
	}
	if !p.Writable {
		return fmt.Errorf("%w: cgroupfs: cannot create cgroups under %s (run as root, or give the agent a delegated cgroup)", cgroup.ErrUnavailable, b.fs.Path(root))
	}
	m := b.fs.Mount()
	b.root = root
	b.features = cgroup.Features{
		Backend: "cgroupfs", Mount: m.Path, Layout: m.Layout, Root: root,
		Kill: p.Kill, Freeze: p.Freeze, Writable: p.Writable, Openat2: b.fs.Openat2(),
	}
	return nil
}

// chooseRoot applies the order documented in the package doc.
func (b *Backend) chooseRoot(configured string) (string, error) {
	if configured != "" {
		return b.relRoot(configured)
	}
	own, err := b.fs.CgroupOf(os.Getpid())
	if err != nil {
		return "", fmt.Errorf("%w: cgroupfs: %w", cgroup.ErrUnavailable, err)
	}
	// Started in the leaf already (a re-exec, or a previous move)?
	if parent, leaf := splitLeaf(own); leaf == agentLeaf && b.delegated(parent) {
		return cgroup.JoinPath(parent, groupsDir), nil
	}
	if own != "/" && b.delegated(own) {
		if err := b.moveSelfToLeaf(own); err != nil {
			return "", err
		}
		return cgroup.JoinPath(own, groupsDir), nil
	}
	if b.user {
		return "", fmt.Errorf("%w: cgroupfs: the agent's cgroup %s is not delegated to it (no user.delegate or trusted.delegate mark): "+
			"start the agent in a cgroup delegated to you (as root: chown the cgroup and its cgroup.procs, cgroup.subtree_control and cgroup.threads to you, "+
			"and setfattr -n user.delegate -v 1 on it), or name one with --cgroup-root", cgroup.ErrUnavailable, b.fs.Path(own))
	}
	return defaultRoot, nil
}

const (
	defaultRoot = "/orphand"
	agentLeaf   = "agent"
	groupsDir   = "groups"
)

// relRoot accepts the root as a path relative to the mount ("/orphand") or
// as an absolute path below the mount point.
func (b *Backend) relRoot(p string) (string, error) {
	mp := strings.TrimSuffix(b.fs.Mount().Path, "/")
	if rest, ok := strings.CutPrefix(p, mp+"/"); ok && mp != "" {
		p = "/" + rest
	}
	if _, err := cgroup.SplitPath(p); err != nil {
		return "", fmt.Errorf("cgroupfs: cgroup root: %w", err)
	}
	return p, nil
}

// delegated reports whether systemd delegated the cgroup rel to us: it
// marks delegated cgroups with the trusted.delegate (v251+) or
// user.delegate (v252+) extended attribute set to "1".
func (b *Backend) delegated(rel string) bool {
	f, err := b.fs.OpenDir(rel)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, name := range []string{"trusted.delegate", "user.delegate"} {
		buf := make([]byte, 8)
		n, err := unix.Fgetxattr(int(f.Fd()), name, buf)
		if err == nil && string(buf[:n]) == "1" {
			return true
		}
	}
	return false
}

// moveSelfToLeaf moves the agent (all its threads) from its delegated
// cgroup own into own/agent, so that own has no processes of its own and
// controllers can be enabled for the groups.
func (b *Backend) moveSelfToLeaf(own string) error {
	leaf := cgroup.JoinPath(own, agentLeaf)
	if err := b.fs.Mkdir(leaf); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: cgroupfs: create the agent's leaf %s: %w", cgroup.ErrUnavailable, b.fs.Path(leaf), err)
	}
	if err := b.fs.Attach(leaf, os.Getpid()); err != nil {
		return fmt.Errorf("%w: cgroupfs: move the agent into %s: %w", cgroup.ErrUnavailable, b.fs.Path(leaf), err)
	}
	b.log.Info("moved the agent into a leaf of its delegated cgroup", "cgroup", leaf)
	return nil
}

func splitLeaf(p string) (parent, leaf string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[i+1:]
	}
	return p[:i], p[i+1:]
}

// Name returns "cgroupfs".
func (b *Backend) Name() string { return "cgroupfs" }

// Features reports what Open found.
func (b *Backend) Features() cgroup.Features { return b.features }

// FS returns the opened cgroup2 hierarchy.
func (b *Backend) FS() *cgroup.FS { return b.fs }

// Close releases the mount descriptor. Groups are left as they are.
func (b *Backend) Close() error { return b.fs.Close() }
