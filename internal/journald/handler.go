package journald

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Options tune a Handler.
type Options struct {
	// Level is the minimum level sent; nil means slog.LevelInfo.
	Level slog.Leveler
	// Prefix goes before every attribute's field name, so that the
	// program's fields cannot clash with journald's own: with "ORPHAND_",
	// the attribute "group" is the field ORPHAND_GROUP.
	Prefix string
	// Identifier is SYSLOG_IDENTIFIER (journalctl -t), such as "orphand".
	Identifier string
	// AddSource adds CODE_FILE, CODE_LINE and CODE_FUNC.
	AddSource bool
	// Fallback receives, as a line of text, an entry journald did not take
	// (journald stopped, a full socket for longer than the send timeout);
	// stderr is the natural choice. Nil: such an entry is dropped and
	// Handle returns the error.
	Fallback io.Writer
}

// Handler is a slog.Handler that sends each record to journald as one
// entry: MESSAGE (the message, then the attributes as key=value, so that
// plain journalctl output reads like a text log), PRIORITY (from the
// level: debug 7, info 6, warn 4, error 3), SYSLOG_IDENTIFIER, and one
// field per attribute, named by FieldName(Prefix, key) — a group's
// attributes as "group_key". Time is journald's own receive time.
type Handler struct {
	conn   *Conn
	opts   Options
	fbMu   *sync.Mutex // serialises writes to opts.Fallback
	fields []byte      // the attributes of With, as fields
	text   []byte      // the same as " key=value" text
	group  string      // WithGroup's groups, "a.b." (text) ...
	fgroup string      // ... and "a_b_" (field names)
}

// NewHandler returns a Handler sending to conn, which the caller keeps
// open as long as the handler is used and then closes.
func NewHandler(conn *Conn, opts Options) *Handler {
	if opts.Level == nil {
		opts.Level = slog.LevelInfo
	}
	return &Handler{conn: conn, opts: opts, fbMu: &sync.Mutex{}}
}

// Enabled reports whether level is sent.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.opts.Level.Level()
}

// WithAttrs returns a handler whose entries also carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.fields, c.text = slices.Clip(h.fields), slices.Clip(h.text)
	for _, a := range attrs {
		c.fields, c.text = c.appendAttr(c.fields, c.text, h.group, h.fgroup, a)
	}
	return &c
}

// WithGroup returns a handler that qualifies later attributes by name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	c.fgroup = h.fgroup + name + "_"
	return &c
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// Handle sends r to journald.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	fp, tp := bufPool.Get().(*[]byte), bufPool.Get().(*[]byte)
	defer func() {
		if cap(*fp) <= 64<<10 { // do not keep a huge entry's buffer
			bufPool.Put(fp)
		}
		if cap(*tp) <= 64<<10 {
			bufPool.Put(tp)
		}
	}()
	fields := AppendField((*fp)[:0], "PRIORITY", strconv.Itoa(priority(r.Level)))
	if h.opts.Identifier != "" {
		fields = AppendField(fields, "SYSLOG_IDENTIFIER", h.opts.Identifier)
	}
	if h.opts.AddSource && r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		fields = AppendField(fields, "CODE_FILE", f.File)
		fields = AppendField(fields, "CODE_LINE", strconv.Itoa(f.Line))
		fields = AppendField(fields, "CODE_FUNC", f.Function)
	}
	fields = append(fields, h.fields...)
	text := append(append((*tp)[:0], r.Message...), h.text...)
	r.Attrs(func(a slog.Attr) bool {
		fields, text = h.appendAttr(fields, text, h.group, h.fgroup, a)
		return true
	})
	fields = AppendField(fields, "MESSAGE", string(text))
	*fp, *tp = fields, text
	err := h.conn.Send(fields)
	if err == nil || h.opts.Fallback == nil {
		return err
	}
	line := append([]byte(r.Level.String()+" "), text...)
	line = append(line, " (not in the journal: "...)
	line = append(line, err.Error()...)
	line = append(line, ")\n"...)
	h.fbMu.Lock()
	defer h.fbMu.Unlock()
	_, werr := h.opts.Fallback.Write(line)
	return werr
}

// appendAttr adds a as fields and as text; groups are flattened.
func (h *Handler) appendAttr(fields, text []byte, group, fgroup string, a slog.Attr) ([]byte, []byte) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fields, text
	}
	if a.Value.Kind() == slog.KindGroup {
		g, fg := group, fgroup
		if a.Key != "" {
			g, fg = group+a.Key+".", fgroup+a.Key+"_"
		}
		for _, sub := range a.Value.Group() {
			fields, text = h.appendAttr(fields, text, g, fg, sub)
		}
		return fields, text
	}
	v := valueString(a.Value)
	fields = AppendField(fields, FieldName(h.opts.Prefix, fgroup+a.Key), v)
	text = append(text, ' ')
	text = append(text, group...)
	text = append(text, a.Key...)
	text = append(text, '=')
	if needsQuote(v) {
		return fields, strconv.AppendQuote(text, v)
	}
	return fields, append(text, v...)
}

func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	}
	return v.String() // numbers, durations, bools; errors and Stringers by fmt
}

// needsQuote reports whether v must be quoted in key=value text, as
// slog's text handler would.
func needsQuote(v string) bool {
	if v == "" {
		return true
	}
	for _, r := range v {
		if r == ' ' || r == '=' || r == '"' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// priority maps a level to syslog's priorities, which journald keeps.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3 // err
	case l >= slog.LevelWarn:
		return 4 // warning
	case l >= slog.LevelInfo:
		return 6 // info
	}
	return 7 // debug
}
