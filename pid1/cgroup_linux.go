package pid1

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/orphand/orphand/cgroup"
)

// cmdCgroup is the child cgroup CMD is spawned into, under init's own
// cgroup v2: membership is inherited at fork, so setsid'ed double forks stay
// in it, and cgroup.kill ends them all at once.
type cmdCgroup struct {
	fs  *cgroup.FS
	rel string   // relative to the mount
	dir *os.File // for CLONE_INTO_CGROUP; closed once CMD has started
}

// cgroupPrefix starts the name of every cgroup init creates.
const cgroupPrefix = "orphand-init-"

// newCmdCgroup creates CMD's cgroup. It returns nil and the reason when init
// cannot (no cgroup2 mounted, read-only, not delegated): CMD then runs
// without one.
func newCmdCgroup(self int, opts cgroup.Options) (*cmdCgroup, error) {
	m, err := cgroup.Discover()
	if err != nil {
		return nil, err
	}
	fs, err := cgroup.OpenFS(m, opts)
	if err != nil {
		return nil, err
	}
	own, err := fs.CgroupOf(self)
	if err != nil {
		_ = fs.Close()
		return nil, err
	}
	// Random too, since every container's init is pid 1 and a cgroup left
	// by one that was SIGKILLed may still be there. math/rand/v2's generator
	// (seeded by the runtime from the kernel) is unpredictable enough for a
	// name, and, unlike crypto/rand's first use, costs init no start-up time.
	rel := cgroup.JoinPath(own, fmt.Sprintf("%s%d-%08x", cgroupPrefix, self, rand.Uint32()))
	if err := fs.Mkdir(rel); err != nil {
		_ = fs.Close()
		return nil, fmt.Errorf("create %s: %w", fs.Path(rel), err)
	}
	// Which kill mechanism the kernel offers, from the files it shows: a
	// scratch cgroup probe would cost start-up time. A refused cgroup.kill
	// write still falls back to freeze + SIGKILL. cgroup.freeze (Linux 5.2)
	// is older than cgroup.kill (5.14).
	hasKill := fs.HasFile(rel, "cgroup.kill")
	fs.SetFeatures(hasKill, hasKill || fs.HasFile(rel, "cgroup.freeze"))
	dir, err := fs.OpenDir(rel)
	if err != nil {
		_ = fs.Remove(context.Background(), rel)
		_ = fs.Close()
		return nil, err
	}
	return &cmdCgroup{fs: fs, rel: rel, dir: dir}, nil
}

// closeDir releases the descriptor used to spawn into the cgroup.
func (c *cmdCgroup) closeDir() {
	if c.dir != nil {
		c.dir.Close()
		c.dir = nil
	}
}

// populated reports whether a live process is left in the cgroup (zombies
// do not count).
func (c *cmdCgroup) populated() bool {
	ev, err := c.fs.Events(c.rel)
	return err != nil || ev.Populated // unreadable: assume the worst and kill
}

// kill empties the cgroup: opts.Grace > 0 sends opts.Signal first, then
// cgroup.kill (or its fallback), and waits for "populated 0".
func (c *cmdCgroup) kill(ctx context.Context, opts cgroup.KillOptions) (cgroup.KillResult, error) {
	return c.fs.Kill(ctx, c.rel, opts)
}

// remove deletes the cgroup (retrying while the kernel still holds it busy)
// and closes the hierarchy.
func (c *cmdCgroup) remove() error {
	c.closeDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.fs.Remove(ctx, c.rel)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, c.fs.Close())
}
