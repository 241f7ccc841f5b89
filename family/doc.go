// Package family lets child processes report to the process that started
// them: a *master* and its *children*, the model of Perl's IPC::Fork::Simple,
// for Go programs and, over a documented wire format, for children in any
// language (docs/family-protocol.md).
//
// A master listens on a Unix socket in a private directory and gives its
// children the connection info in the environment ([EnvVar],
// ORPHAND_FAMILY). A child connects with [InitChild] (or [NewChild]), says
// hello with a symbolic name (default: its pid), sends named values
// ([Child.ToMaster]: the last value per key wins) and queue elements
// ([Child.PushToMaster]: appended), and disconnects. The master gives each
// child a CID, unique and increasing from 0, tracks running and finished
// children, reads values by CID or name ([Master.FromCID],
// [Master.FromChild]) and pops queues oldest first ([Master.PopFromCID]).
// [Send], [Get], [Push] and [Pop] carry JSON values for typed code.
//
// The master gathers in one of the seed's three ways:
//
//   - blocking: [Master.ProcessChildData] with [BlockUntilChild] returns when
//     a child has disconnected, with [BlockUntilData] when one has sent data
//     or disconnected;
//   - polling: ProcessChildData with [BlockNever] takes what has arrived and
//     returns at once;
//   - data handler: [Master.StartDataHandler] gathers in the background and
//     [Master.Collect] hands the gathered state over in one step.
//
// A child that has exited may not have been processed yet (the seed's note
// on wait(2)): wait for its disconnection, not for its exit status.
//
// For a reply channel (bi-directional, the seed's last two examples) a child
// makes a master of its own and sends its ConnectionInfo up; the parent
// answers with NewChild.
//
// What the seed admitted and this package fixes: there is no TCP port (the
// socket's directory is 0700 and every peer's uid must be the master's,
// checked with SO_PEERCRED; [Options.DescendantsOnly] also requires the
// peer to descend from the master); a connection must say hello within
// [Options.HelloTimeout]; a child stalled mid-frame is dropped; values are
// bounded ([Options.MaxValueSize], 64 MiB by default, against the seed's
// 4 GiB) and read straight into the buffer that keeps them; all held
// memory is bounded by [Options.MemoryLimit] and connections by
// [Options.MaxConns]; a child that dies mid-value loses only that value and
// is still reported finished; a connection that never said hello is not a
// child and never reported as one.
//
// The master needs Linux (peer credentials); children work on any Unix.
package family
