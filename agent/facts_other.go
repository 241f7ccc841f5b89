//go:build !linux

package agent

import (
	"errors"
	"log/slog"
	"net"

	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

var errNotLinux = errors.New("agent: orphand runs on Linux only")

var forcePeerCredFallback bool

func probeHost(*slog.Logger) (hostFacts, error)               { return hostFacts{}, errNotLinux }
func bootTicks() uint64                                       { return 0 }
func readPeer(net.Conn, hostFacts, uint64) (peer, error)      { return peer{}, errNotLinux }
func processFacts(*proctree.Process) (policy.Process, error)  { return policy.Process{}, errNotLinux }
func (a *Agent) policyHost() policy.Host                      { return policy.Host{} }
func procCgroup(int) (string, error)                          { return "", errNotLinux }
func children(int) []int                                      { return nil }
func dupProcess(*proctree.Process) (*proctree.Process, error) { return nil, errNotLinux }
