// Package logging builds the service's log/slog loggers. Its handler cannot
// print a network address: values of type net.Addr, net.IP, netip.Addr and
// netip.AddrPort are dropped, and anything that looks like an IPv4 or IPv6
// address in a message or string attribute is replaced by "[addr]". This is
// how the server keeps promise 6 of DESIGN.md (no user IP in any log line),
// including for the error logs of go-smtp, go-imap and net/http, which are
// routed through StdLogger.
package logging

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
)

// ipv4Pattern and ipv6Pattern find candidate addresses; ipv6 candidates are
// confirmed with netip.ParseAddr so times like "12:30:45" stay readable.
var (
	ipv4Pattern = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b`)
	ipv6Pattern = regexp.MustCompile(`\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%[0-9A-Za-z]+)?\]?(?::\d{1,5})?`)
)

// Redact replaces every IP address in s by "[addr]".
func Redact(s string) string {
	s = ipv4Pattern.ReplaceAllString(s, "[addr]")
	return ipv6Pattern.ReplaceAllStringFunc(s, func(m string) string {
		core := strings.Trim(m, "[]")
		if i := strings.LastIndex(m, "]:"); i >= 0 {
			core = strings.Trim(m[:i+1], "[]")
		}
		if j := strings.IndexByte(core, '%'); j >= 0 {
			core = core[:j]
		}
		if _, err := netip.ParseAddr(core); err == nil {
			return "[addr]"
		}
		// Also catch "::1:port"-like forms where the port got absorbed.
		if k := strings.LastIndexByte(core, ':'); k > 0 {
			if _, err := netip.ParseAddr(core[:k]); err == nil {
				return "[addr]"
			}
		}
		return m
	})
}

// Handler wraps another slog.Handler and removes network addresses.
type Handler struct{ inner slog.Handler }

// NewHandler wraps inner.
func NewHandler(inner slog.Handler) *Handler { return &Handler{inner: inner} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a2, ok := clean(a); ok {
			nr.AddAttrs(a2)
		}
		return true
	})
	return h.inner.Handle(ctx, nr)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a2, ok := clean(a); ok {
			out = append(out, a2)
		}
	}
	return &Handler{inner: h.inner.WithAttrs(out)}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name)}
}

func clean(a slog.Attr) (slog.Attr, bool) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(v.String())), true
	case slog.KindGroup:
		var kept []any
		for _, g := range v.Group() {
			if g2, ok := clean(g); ok {
				kept = append(kept, g2)
			}
		}
		return slog.Group(a.Key, kept...), true
	case slog.KindAny:
		switch x := v.Any().(type) {
		case net.Addr, net.IP, netip.Addr, netip.AddrPort, *net.TCPAddr, *net.UDPAddr:
			return slog.Attr{}, false
		case error:
			return slog.String(a.Key, Redact(x.Error())), true
		default:
			return slog.String(a.Key, Redact(v.String())), true
		}
	}
	return slog.Attr{Key: a.Key, Value: v}, true
}

// New returns a text logger on w at level that never prints an address.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(NewHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}

// StdLogger adapts l for libraries that take a *log.Logger (net/http's
// ErrorLog, go-smtp's ErrorLog); every line goes through the redacting
// handler at level Warn.
func StdLogger(l *slog.Logger) *log.Logger {
	return log.New(writerFunc(func(p []byte) (int, error) {
		l.Warn(strings.TrimRight(string(p), "\n"))
		return len(p), nil
	}), "", 0)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
