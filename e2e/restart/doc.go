// Package restart is the chaos test of the agent's restart safety: cycles
// of registering groups (subtree and watch, nested, on=disconnect), killing
// the agent with SIGKILL — at a random moment, and at named moments in the
// middle of a registration or of a kill, which a test build of orphand
// (tag orphand_crashpoints) reaches deterministically — killing spawners
// and reusing their pids while it is down, and restarting it. After every
// restart every group must be accounted for (alive: still watched, and
// killed later by its trigger; dead: killed; none lost, none duplicated),
// no process the test started may outlive its group, and none that should
// live may have been killed.
//
// TestChaos runs it on the host with the cgroupfs backend; TestChaosSystemd
// runs it in a systemd-nspawn container where systemd starts, restarts
// (systemctl restart) and kills (systemctl kill -s KILL) the agent, with
// the systemd backend and the fd store. Both need root; CI runs them.
//
// This package holds no code outside its tests.
package restart
