package security

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// flooder is a helper holding the connections of a flood.
type flooder struct {
	res   floodResult
	stdin *os.File
	done  chan struct{}
}

// flood has uid open n connections to a; they stay open until release
// (or the test's end).
func (a *agent) flood(t *testing.T, uid, n int) *flooder {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	stderr := &testutil.SyncBuffer{}
	cmd := exec.Command(a.bins.helper)
	cmd.Env = append(os.Environ(), helperEnv+"="+modeFlood, socketEnv+"="+a.socket, countEnv+"="+strconv.Itoa(n))
	cmd.Dir = "/"
	cmd.SysProcAttr = credential(uid)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	f := &flooder{stdin: inW, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-f.done
		inW.Close()
	})
	_ = outR.SetReadDeadline(time.Now().Add(10 * waitLong))
	line, err := bufio.NewReader(outR).ReadBytes('\n')
	if err != nil {
		t.Fatalf("uid %d flood of %d: %v (helper: %s)", uid, n, err, stderr)
	}
	if err := json.Unmarshal(line, &f.res); err != nil {
		t.Fatalf("flood result %q: %v", line, err)
	}
	t.Logf("uid %d opened %d connections: %d served, refused %v", uid, n, f.res.Accepted, f.res.Refused)
	return f
}

// release closes the flood's connections and waits for the helper.
func (f *flooder) release() {
	f.stdin.Close()
	<-f.done
}

// cycles has uid connect and disconnect n times (see the helper's cycles).
func (a *agent) cycles(t testing.TB, uid, n int) int {
	t.Helper()
	cmd := exec.Command(a.bins.helper)
	cmd.Env = append(os.Environ(), helperEnv+"="+modeCycles, socketEnv+"="+a.socket, countEnv+"="+strconv.Itoa(n))
	cmd.Dir = "/"
	cmd.SysProcAttr = credential(uid)
	stderr := &testutil.SyncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("uid %d: %d connect/close cycles: %v (helper: %s)", uid, n, err, stderr)
	}
	answered, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("cycles printed %q", out)
	}
	return answered
}
