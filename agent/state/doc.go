// Package state is the agent's durable store: the records of its groups,
// kept in a directory (--state-dir, /var/lib/orphand by default) so that an
// agent killed at any instant finds them again when it starts.
//
// The store holds opaque records (JSON documents, one per group id); what
// a record means is the agent's business. Commit makes a batch of changes
// durable before it returns: the agent commits a registration's record
// before it acknowledges the registration.
//
// # On disk
//
// The directory holds one generation G at a time: snapshot.G, every record
// as of the generation's start, and journal.G, the changes since, appended
// in order. A change is one line, a full copy of the record (or its
// deletion):
//
//	<crc32c of the JSON, 8 hex digits> <JSON>\n
//
// The first line of both files is a header naming the format, its version,
// the kind of file and the generation; a snapshot's header also counts its
// records. A commit appends its lines with one write(2) and one
// fdatasync(2), whatever the number of changes, so concurrent registrations
// share the cost of the flush (the agent batches them). A line cut short by
// a crash, or damaged, fails its checksum and is skipped; the line after it
// still reads, because each line is complete in itself.
//
// The journal is compacted into a new generation when it holds more than
// twice as many lines as there are records (and at least compactMin), and
// whenever the store is opened: snapshot.G+1 is written to a temporary file,
// flushed, renamed into place; journal.G+1 is created and flushed; the
// directory is flushed; then generation G is deleted. A crash at any point
// leaves a complete generation: a snapshot file exists only once its
// content is durable, and the highest one wins.
//
// In memory the store keeps only the set of ids and the journal's length as
// of its last flush: compaction reads the records back from the current
// generation's files, stopping at that length, so a batch whose write or
// flush failed never counts even if part of it reached the disk.
//
// The directory is locked (flock on its lock file) while a Store is open, so
// that two agents never share one.
//
// Why a journal and not one file per group: writing a file atomically costs
// a flush of the file and one of the directory per change; appending to the
// journal costs one flush per batch. BenchmarkCommit measures both side by
// side (docs/restart.md has the figures).
package state
