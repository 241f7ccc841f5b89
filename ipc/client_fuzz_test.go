package ipc

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pipeClient returns a Client on one end of a socketpair and the other end,
// standing for the agent.
func pipeClient(t testing.TB) (*Client, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c, agent := conn(fds[0]), conn(fds[1])
	client := newClient(c.(*net.UnixConn), "socketpair")
	t.Cleanup(func() { client.Close(); agent.Close() })
	return client, agent
}

// FuzzClientResponses feeds arbitrary bytes to the client as the agent's
// side of the conversation: a request and then a subscription must end in
// an answer or an error, never a panic or a hang.
func FuzzClientResponses(f *testing.F) {
	f.Add([]byte("{\"id\":1,\"ok\":true,\"groups\":[{\"id\":\"a\"}]}\n"))
	f.Add([]byte("{\"id\":1,\"ok\":false,\"error\":{\"code\":\"x\",\"message\":\"y\"}}\n"))
	f.Add([]byte("{\"ok\":false}\n"))
	f.Add([]byte("{\"id\":2,\"ok\":true}\n{\"id\":1,\"ok\":true}\n"))
	f.Add([]byte("{\"id\":1,\"ok\":true}\n{\"event\":\"killed\",\"group\":\"g\",\"time\":\"2026-11-21T10:00:00Z\",\"killed\":1}\n{\"ok\":false,\"error\":null}\n"))
	f.Add([]byte("{\"id\":1,\"ok\":true}\n{\"event\":1}\n"))
	f.Add([]byte("\n\n\n"))
	f.Add([]byte("{\"id\":\"1\",\"ok\":true,\"status\":{\"uptime_s\":\"x\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		client, agent := pipeClient(t)
		go func() {
			_ = agent.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = agent.Write(data)
			agent.(*net.UnixConn).CloseWrite()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = client.Do(ctx, Request{Op: OpList})
		events, err := client.Subscribe(ctx, "")
		if err != nil {
			return
		}
		for _, err := range events {
			if err != nil {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("client hung on input %q", data)
		}
	})
}
