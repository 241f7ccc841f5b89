package e2e

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// compatClient is the original orphand's Perl client as the e2e/compat
// suite keeps it, put in the share by host: the guest has perl, not cc.
const (
	compatClientSrc = "e2e/compat/testdata/client.pl"
	guestClient     = nspawn.GuestShare + "/client.pl"
	compatSocket    = "/run/orphand/compat.sock"
)

// testCompat: orphand-compat.socket is installed disabled; enabled as
// docs/compat.md says, it hands the agent a second socket, on which the
// original client's REGISTERs make groups (systemd scopes) that die with
// the client. It stays enabled for the steps after: an upgrade keeps it,
// remove stops it and purge takes its enablement.
func testCompat(t *testing.T) {
	if got := systemctl("is-enabled", "orphand-compat.socket"); got != "disabled" {
		t.Fatalf("orphand-compat.socket is %q after the installation, want disabled", got)
	}
	run(t, "systemd-analyze", "verify", "--man=no", "orphand-compat.socket")
	// As docs/compat.md says: systemd starts no socket of a running
	// service, and a service gets its sockets when it starts.
	run(t, "systemctl", "enable", "orphand-compat.socket")
	run(t, "systemctl", "stop", "orphand.service")
	run(t, "systemctl", "start", "orphand-compat.socket", "orphand.service")
	if st := agentStatus(t); !slices.Contains(st.Features, "compat") || st.Compat == nil {
		t.Fatalf("the agent does not serve the compatibility socket: features %v", st.Features)
	}
	fi, err := os.Stat(compatSocket)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Fatalf("%s: %v %v, want a socket with mode 0666", compatSocket, fi, err)
	}

	cmd := exec.Command("perl", guestClient, "spawn", "3")
	cmd.Env = append(os.Environ(), "ORPHAND_SOCKET="+compatSocket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) != 5 || fields[0] != "ready" {
		t.Fatalf("client.pl spawn 3: %q, %v", line, err)
	}
	var kids []*proctree.Process
	for _, f := range fields[2:] {
		pid, _ := strconv.Atoi(f)
		p, err := proctree.Open(pid)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL); p.Close() })
		kids = append(kids, p)
	}
	n := 0
	for _, g := range mustCtl(t, "ls").Groups {
		if g.Origin == ipc.OriginCompat && g.Spawner.Pid == cmd.Process.Pid && g.State == ipc.StateActive {
			n++
			if g.Backend != "systemd" || !strings.HasPrefix(g.Unit, "orphand-") {
				t.Errorf("compat group %s: backend %s, unit %q; want a scope of the systemd backend", g.ID, g.Backend, g.Unit)
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d compat groups for the client's children, want 3", n)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, p := range kids {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("child %d of the killed client still runs: %v", p.Pid(), err)
		}
	}
}
