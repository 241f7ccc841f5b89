package compat

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

// The helper is this test binary re-executed as another uid. helperEnv
// names its mode; socketEnv the compatibility socket; countEnv how many.
const (
	helperEnv = "ORPHAND_COMPAT_HELPER"
	socketEnv = "ORPHAND_COMPAT_SOCKET"
	countEnv  = "ORPHAND_COMPAT_COUNT"

	modePartial = "partial" // open N connections, write 5 bytes on each, hold them
)

func helperMain(mode string) int {
	n, err := strconv.Atoi(os.Getenv(countEnv))
	if err == nil && mode == modePartial {
		err = partial(os.Getenv(socketEnv), n)
	} else if err == nil {
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 3
	}
	return 0
}

// partial opens n connections and writes the first 5 bytes of a record on
// each, prints "held N", then holds them until stdin closes, and closes
// them (each connection then ends in the middle of a record).
func partial(sock string, n int) error {
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		held = append(held, c)
		if _, err := c.Write([]byte{1, 2, 3, 4, 5}); err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
	}
	if _, err := fmt.Printf("held %d\n", len(held)); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}
