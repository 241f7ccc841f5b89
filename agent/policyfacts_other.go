//go:build !linux

package agent

import (
	"errors"
	"log/slog"

	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

var errNotLinux = errors.New("agent: orphand runs on Linux only")

var forcePeerCredFallback bool

func probeHost(*slog.Logger) (hostFacts, error)              { return hostFacts{}, errNotLinux }
func processFacts(*proctree.Process) (policy.Process, error) { return policy.Process{}, errNotLinux }
func (a *Agent) policyHost() policy.Host                     { return policy.Host{} }
func children(int) []int                                     { return nil }
