// Package wire reads the agent's request lines off a connection: one line
// at a time, at most a given size, with a buffer that grows only as a line
// needs it ([LineReader]), under the connection's read deadlines — the
// idle limit between requests and the line limit once a line has begun
// ([Deadline]). It knows nothing of groups; the limits it reports are
// named as on the wire (package ipc).
package wire
