package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// newLogger returns the logger chatd writes its events with: slog's text
// format on w, one line an event. When w is the journal (systemd sets
// JOURNAL_STREAM to stderr's device and inode), the journal adds the time
// itself, so lines carry none and start with a <N> syslog priority prefix
// instead, which journald turns into the entry's priority.
func newLogger(w io.Writer) *slog.Logger {
	if !toJournal() {
		return slog.New(slog.NewTextHandler(w, nil))
	}

	out := &journalOut{w: w}
	text := slog.NewTextHandler(&out.buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})

	return slog.New(&journalHandler{out: out, text: text})
}

// toJournal reports whether stderr is connected to the journal.
func toJournal() bool {
	dev, ino, ok := bytes.Cut([]byte(os.Getenv("JOURNAL_STREAM")), []byte(":"))
	if !ok {
		return false
	}

	var st unix.Stat_t
	if unix.Fstat(2, &st) != nil {
		return false
	}

	return string(dev) == strconv.FormatUint(st.Dev, 10) &&
		string(ino) == strconv.FormatUint(st.Ino, 10)
}

// journalHandler writes records as slog text lines without time or level,
// each prefixed with the syslog priority of its level.
type journalHandler struct {
	out  *journalOut
	text slog.Handler // formats into out.buf
}

// journalOut is where a journalHandler and those derived from it write.
type journalOut struct {
	w   io.Writer
	mu  sync.Mutex   // guards buf, and so every text handler writing to it
	buf bytes.Buffer // one record at a time
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.text.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	o := h.out
	o.mu.Lock()
	defer o.mu.Unlock()

	o.buf.Reset()
	o.buf.WriteString(priority(r.Level))
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}

	_, err := o.w.Write(o.buf.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{out: h.out, text: h.text.WithAttrs(as)}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{out: h.out, text: h.text.WithGroup(name)}
}

// priority returns the syslog priority prefix for level l.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}

	return "<7>"
}
