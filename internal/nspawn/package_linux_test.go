package nspawn

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// The flow of the packaging tests: a .deb whose postinst enables a socket
// unit is installed inside, the socket starts the service on the first
// connection, survives a restart, and the package is removed again.
var selftestDeb = map[string]string{
	"DEBIAN/control": `Package: orphand-nspawn-selftest
Version: 1.0
Architecture: all
Maintainer: orphand tests <tests@orphand.invalid>
Description: internal/nspawn self-test package
`,
	"DEBIAN/postinst": `#!/bin/sh
set -e
if [ "$1" = configure ]; then
	systemctl daemon-reload
	systemctl enable --now orphand-nspawn-selftest.socket
fi
`,
	"DEBIAN/prerm": `#!/bin/sh
set -e
if [ "$1" = remove ]; then systemctl disable --now orphand-nspawn-selftest.socket; fi
`,
	"lib/systemd/system/orphand-nspawn-selftest.socket": `[Socket]
ListenStream=/run/orphand-nspawn-selftest.sock
Accept=yes

[Install]
WantedBy=sockets.target
`,
	"lib/systemd/system/orphand-nspawn-selftest@.service": `[Service]
ExecStart=/bin/echo hello from a socket-activated service
StandardOutput=socket
`,
}

const packageScript = `set -eux
dpkg -i /mnt/host/selftest.deb
systemctl is-active orphand-nspawn-selftest.socket
python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("/run/orphand-nspawn-selftest.sock"); print(s.makefile().readline().strip())' | grep -x 'hello from a socket-activated service'
systemctl restart orphand-nspawn-selftest.socket
perl -MIO::Socket::UNIX -e 'my $s = IO::Socket::UNIX->new(Peer => "/run/orphand-nspawn-selftest.sock") or die $!; print scalar <$s>' | grep -q 'hello'
journalctl --no-pager -u 'orphand-nspawn-selftest@*' | grep -c 'Started orphand-nspawn-selftest@'
dpkg -r orphand-nspawn-selftest
! systemctl is-active orphand-nspawn-selftest.socket
`

func TestPackageInstall(t *testing.T) {
	Require(t)
	dpkgDeb := testutil.RequireCommand(t, "dpkg-deb")
	src, share := t.TempDir(), t.TempDir()
	for name, content := range selftestDeb {
		p := filepath.Join(src, name)
		mode := os.FileMode(0o644)
		if filepath.Dir(name) == "DEBIAN" && name != "DEBIAN/control" {
			mode = 0o755
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(dpkgDeb, "--root-owner-group", "--build", src, filepath.Join(share, "selftest.deb")).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	code, err := Run(t.Context(), Options{Share: share, Script: packageScript, Output: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("package flow failed inside: exit status %d (output above)", code)
	}
}
