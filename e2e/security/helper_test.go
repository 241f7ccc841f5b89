package security

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/orphand/orphand/ipc"
)

// The helper is this test binary re-executed as another uid. helperEnv
// names its mode; socketEnv the agent's socket.
const (
	helperEnv = "ORPHAND_SECURITY_HELPER"
	socketEnv = "ORPHAND_SECURITY_SOCKET"
	countEnv  = "ORPHAND_SECURITY_COUNT"
)

const (
	modeProxy  = "proxy"  // one connection: stdin to the agent, the agent to stdout
	modeFlood  = "flood"  // many connections, held until stdin closes
	modeCycles = "cycles" // many connections opened and closed, one at a time
)

func helperMain(mode string) int {
	sock := os.Getenv(socketEnv)
	var err error
	switch mode {
	case modeProxy:
		err = proxy(sock)
	case modeFlood, modeCycles:
		var n int
		if n, err = strconv.Atoi(os.Getenv(countEnv)); err == nil && mode == modeFlood {
			err = flood(sock, n)
		} else if err == nil {
			err = cycles(sock, n)
		}
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 3
	}
	return 0
}

// proxy copies stdin to one connection (shutting its writing side at the
// end of stdin) and the agent's answers to stdout, until the agent hangs
// up.
func proxy(sock string) error {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer nc.Close()
	go func() { // ends with stdin or the connection; the process exits after the copy below
		_, _ = io.Copy(nc, os.Stdin)
		_ = nc.(*net.UnixConn).CloseWrite()
	}()
	_, err = io.Copy(os.Stdout, nc)
	return err
}

// floodResult is what a flood reports on stdout.
type floodResult struct {
	Accepted int            `json:"accepted"`
	Refused  map[string]int `json:"refused"` // by limit name (or error code)
}

// flood opens n connections one after the other, sends each a hello and
// keeps those the agent serves; the others were refused. It reports, then
// holds the accepted ones until stdin closes.
func flood(sock string, n int) error {
	res := floodResult{Refused: map[string]int{}}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range n {
		nc, err := net.Dial("unix", sock)
		if err != nil {
			return fmt.Errorf("connection %d: %w", len(held)+1, err)
		}
		_ = nc.SetDeadline(time.Now().Add(time.Minute))
		// A refused connection gets its error line at once and is closed:
		// the write may fail, the line is still there to read.
		_, _ = nc.Write([]byte(`{"op":"hello","version":1}` + "\n"))
		line, err := bufio.NewReader(nc).ReadBytes('\n')
		var r ipc.Response
		switch {
		case err != nil:
			res.Refused["read: "+err.Error()]++
			nc.Close()
		case json.Unmarshal(line, &r) != nil:
			return fmt.Errorf("answer %q is not a response", line)
		case r.OK:
			_ = nc.SetDeadline(time.Time{})
			held = append(held, nc)
		default:
			name := r.Error.Code
			if r.Error.Limit != "" {
				name = r.Error.Limit
			}
			res.Refused[name]++
			nc.Close()
		}
	}
	res.Accepted = len(held)
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// cycles connects and disconnects n times, one connection at a time, in
// three ways in turn: straight away; after a hello and its answer; and in
// the middle of a request line. It prints how many answers it read.
func cycles(sock string, n int) error {
	answered := 0
	for i := range n {
		nc, err := net.Dial("unix", sock)
		if err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
		_ = nc.SetDeadline(time.Now().Add(time.Minute))
		switch i % 3 {
		case 1:
			if _, err := nc.Write([]byte(`{"op":"hello"}` + "\n")); err != nil {
				return fmt.Errorf("cycle %d: %w", i, err)
			}
			if _, err := bufio.NewReader(nc).ReadBytes('\n'); err != nil {
				return fmt.Errorf("cycle %d: no answer: %w", i, err)
			}
			answered++
		case 2:
			_, _ = nc.Write([]byte(`{"op":"status","id":`))
		}
		nc.Close()
	}
	_, err := fmt.Println(answered)
	return err
}
