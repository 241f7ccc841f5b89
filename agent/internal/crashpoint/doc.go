// Package crashpoint marks moments in the agent's life where a test build
// (tag orphand_crashpoints) can make the agent SIGKILL itself, to test
// restarts at that exact moment (e2e/restart does). In every other build
// [Reach] does nothing and costs nothing, and nothing can make the agent
// kill itself. It knows nothing of groups beyond their ids.
//
// The agent's points:
//
//	register.intent     a subtree group's record is on disk, its cgroup not made yet
//	register.created    its cgroup is made and holds the processes; no record says active
//	register.persisted  the active record is on disk; the client has no answer yet
//	watch.persisted     a watch group's record is on disk; no answer yet
//	kill.persisted      a kill request's killing record is on disk; nothing signalled
//	kill.emptied        a group is empty; its cgroup not removed, no record says dead
package crashpoint
