package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// The programs under test, as GoBuild takes them: import paths, which the
// go tool resolves from any directory of the module.
const (
	Orphand   = "github.com/orphand/orphand/cmd/orphand"
	Orphanctl = "github.com/orphand/orphand/cmd/orphanctl"
	GoClient  = "github.com/orphand/orphand/examples/goclient"
)

// Build is what GoBuild builds.
type Build struct {
	// Out is the binary, or, for several packages, a directory ending
	// in "/".
	Out string
	// Race builds with the race detector (which needs cgo). Without it
	// the build is static (CGO_ENABLED=0), so that the binaries also run
	// in a container with other libraries than the host.
	Race bool
	// Tags are build tags.
	Tags []string
	// Pkgs are the packages' import paths.
	Pkgs []string
}

// GoBuild builds b with the go tool.
func GoBuild(b Build) error {
	args := []string{"build", "-trimpath"}
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	args = append(args, "-o", b.Out)
	env := append(os.Environ(), "CGO_ENABLED=0")
	if b.Race {
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	args = append(args, b.Pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// CopyFile copies from to to, creating to with mode.
func CopyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
