package testutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// removeTimeout bounds RemoveCgroupTree: killed processes leave their
// cgroup within milliseconds, but a loaded CI machine is slow.
const removeTimeout = 30 * time.Second

// RemoveCgroupTree kills every process in the cgroup v2 directory dir and
// in the cgroups below it (cgroup.kill), then removes them, deepest first,
// retrying while the killed processes are still leaving (EBUSY). A dir
// that does not exist is no error; one still there after 30 s is.
func RemoveCgroupTree(dir string) error {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	deadline := time.Now().Add(removeTimeout)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := os.Remove(dirs[i])
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s (still busy %v after cgroup.kill): %w", dirs[i], removeTimeout, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
