// Command goclient is an orphand client in Go, using package ipc: it
// registers itself with the agent, spawns a few children — one of which
// double-forks a setsid daemon — and dies by SIGKILL. The agent kills every
// one of them anyway.
//
//	go run ./examples/goclient [--socket PATH] [--children N] [--linger SECONDS]
//
// The socket is found as orphanctl finds it (ipc.FindSocket):
// $ORPHAND_SOCKET, else your per-user agent's socket if it exists, else
// /run/orphand/orphand.sock. On stdout it prints one JSON line — the group id and every pid it started —
// as examples/client.pl and examples/client.py do.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orphand/orphand/ipc"
)

// daemonizeArg makes the program act as the middle process of the double
// fork: in a new session, start the daemon, print its pid, exit.
const daemonizeArg = "--be-the-middle-of-a-double-fork"

func main() {
	if len(os.Args) == 2 && os.Args[1] == daemonizeArg {
		middle()
		return
	}
	log.SetFlags(0)
	log.SetPrefix("goclient: ")
	socket := flag.String("socket", "", "the agent's socket (default $ORPHAND_SOCKET, else your per-user agent's if it runs, else "+ipc.DefaultSocket+")")
	children := flag.Int("children", 2, "how many children to start")
	linger := flag.Float64("linger", 1, "how many seconds to live after starting them")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ipc.Dial(ctx, *socket)
	if err != nil {
		log.Fatal(err) // says what to do: start orphand, or set ORPHAND_SOCKET
	}
	info, err := c.Hello(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("orphand %s (%s backend)", info.Agent, info.Backend)
	// No Pid: the agent registers the caller, from the socket's peer
	// credentials; the trigger is our exit.
	g, err := c.Register(ctx, ipc.RegisterOptions{Name: "goclient"})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("registered as group %s", g.ID)
	_ = c.Close() // the group lives on: on=exit, not on=disconnect

	var kids []int
	for range *children {
		cmd := exec.Command("sleep", "3600")
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		kids = append(kids, cmd.Process.Pid)
	}
	daemon, err := startDaemon()
	if err != nil {
		log.Fatal(err)
	}

	out, _ := json.Marshal(map[string]any{"group": g.ID, "spawner": os.Getpid(), "children": kids, "daemon": daemon})
	fmt.Println(string(out))
	log.Printf("children %v and daemon %d started; dying by SIGKILL in %gs", kids, daemon, *linger)
	time.Sleep(time.Duration(*linger * float64(time.Second)))
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// startDaemon runs this program again as the middle of a double fork, in a
// session of its own, and returns the pid of the daemon it left behind.
func startDaemon() (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(self, daemonizeArg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("double fork: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// middle starts the daemon and exits at once, so the daemon is orphaned:
// reparented to a subreaper or to pid 1, with no parent of ours to follow.
func middle() {
	cmd := exec.Command("sleep", "3600")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "goclient: start daemon:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	_, _ = fmt.Fprintln(w, cmd.Process.Pid)
	_ = w.Flush()
	os.Exit(0)
}
