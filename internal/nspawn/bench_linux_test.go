package nspawn

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkRun measures a warm run (rootfs cached) side by side with its
// floor: the same nspawn setup running /bin/true without booting systemd.
// The difference is what booting and powering off systemd costs.
func BenchmarkRun(b *testing.B) {
	Require(b)
	rootfs, err := Rootfs(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("boot+script", func(b *testing.B) {
		for b.Loop() {
			if code, err := Run(b.Context(), Options{Script: "true"}); err != nil || code != 0 {
				b.Fatalf("Run = %d, %v", code, err)
			}
		}
	})
	b.Run("boot+is-system-running", func(b *testing.B) {
		for b.Loop() {
			if code, err := Run(b.Context(), Options{Script: "systemctl is-system-running --wait"}); err != nil || code != 0 {
				b.Fatalf("Run = %d, %v", code, err)
			}
		}
	})
	b.Run("no-boot-floor", func(b *testing.B) {
		for b.Loop() {
			if err := nspawnTrue(b.Context(), rootfs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// nspawnTrue runs /bin/true in the rootfs with Run's setup minus --boot.
func nspawnTrue(ctx context.Context, rootfs string) error {
	id, err := newRunID()
	if err != nil {
		return err
	}
	g, err := newProcGroup(id.group(), true, "")
	if err != nil {
		return err
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", launchScript, "bench",
		"systemd-nspawn", "--quiet", "--directory="+rootfs, "--machine="+id.machine(), "--register=no", "--keep-unit",
		"--volatile=overlay", "--private-network", "--console=pipe", "--link-journal=no", "--suppress-sync=yes", "/bin/true")
	cmd.Env = append(minimalEnv(), "ORPHAND_NSPAWN_V1="+g.v1)
	waitErr, err := runInGroup(ctx, cmd, g, tickEvery, nil)
	if err != nil {
		return err
	}
	return waitErr
}

// BenchmarkRootfsCold measures a cold build of the rootfs from the host's
// mirror into an empty cache: what a fresh CI machine pays once per run.
// It downloads every package from the mirror each time.
func BenchmarkRootfsCold(b *testing.B) {
	Require(b)
	rc := newRecipe(hostMirror("/etc/apt"))
	for b.Loop() {
		if _, err := buildRootfs(b.Context(), filepath.Join(b.TempDir(), "cache"), rc); err != nil {
			b.Fatal(err)
		}
	}
}
