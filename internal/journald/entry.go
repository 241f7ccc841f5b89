// Package journald writes log entries to systemd-journald over its native
// protocol, as systemd documents it ("Native Journal Protocol",
// systemd.io/JOURNAL_NATIVE_PROTOCOL): an entry is a list of FIELD=value
// items, sent as one datagram to /run/systemd/journal/socket, or — when it
// is too large for a datagram — written to a sealed memfd whose descriptor
// is sent instead (SCM_RIGHTS). Each field can be matched by journalctl
// (`journalctl ORPHAND_GROUP=…`), which a line of text on stderr cannot.
//
// [Handler] is a log/slog handler that sends every record so, each
// attribute a field of its own; [StderrIsJournal] tells whether stderr is
// connected to the journal ($JOURNAL_STREAM, as systemd.exec(5) documents),
// which is when a service should use it.
//
// go-systemd's journal package, which the module already links, has the
// $JOURNAL_STREAM check used here, but not the sender: its Send takes the
// fields as a map, prints rather than fixes a field name journald would
// refuse, and writes a large entry to an unlinked file in /dev/shm instead
// of a sealed memfd, which systemd's own sd-journal sends.
package journald

import (
	"encoding/binary"
	"strings"
)

// maxFieldName is the longest field name journald accepts.
const maxFieldName = 64

// FieldName turns key into a valid journal field name: upper-case ASCII
// letters, digits and underscores, not starting with an underscore or a
// digit (journald reserves a leading underscore for the fields it adds
// itself), at most 64 bytes. Lower-case letters are upper-cased, anything
// else becomes an underscore; prefix (such as "ORPHAND_") goes first and
// is assumed valid. A key that leaves nothing valid gives prefix+"FIELD".
func FieldName(prefix, key string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(key))
	b.WriteString(prefix)
	for i := 0; i < len(key) && b.Len() < maxFieldName; i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		default:
			c = '_'
		}
		if b.Len() == 0 && (c == '_' || c >= '0' && c <= '9') {
			continue // a name cannot start so
		}
		b.WriteByte(c)
	}
	if b.Len() == len(prefix) {
		b.WriteString("FIELD")
	}
	return b.String()
}

// AppendField appends one field of an entry to buf: "NAME=value\n", or,
// for a value holding a newline, the binary form "NAME\n", the value's
// length as a little-endian 64-bit integer, the value and "\n". name must
// be valid (see FieldName).
func AppendField(buf []byte, name, value string) []byte {
	buf = append(buf, name...)
	if strings.IndexByte(value, '\n') < 0 {
		buf = append(buf, '=')
		buf = append(buf, value...)
		return append(buf, '\n')
	}
	buf = append(buf, '\n')
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(value)))
	buf = append(buf, value...)
	return append(buf, '\n')
}
