package agent

import "github.com/orphand/orphand/internal/peercred"

// hostFacts is what New probed about the agent's own process.
type hostFacts struct {
	pid   int
	peers *peercred.Reader // reads who connected (SO_PEERCRED, SO_PEERPIDFD)
}
