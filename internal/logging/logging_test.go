package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"ipv4", "conn from 127.0.0.1 closed", "conn from [addr] closed"},
		{"ipv4 port", "dial 192.168.10.3:5432 failed", "dial [addr] failed"},
		{"ipv6 loopback", "from ::1 ok", "from [addr] ok"},
		{"ipv6 bracket port", "from [::1]:2525 ok", "from [addr] ok"},
		{"ipv6 full", "fe80::1:2:3:4 here", "[addr] here"},
		{"time stays", "at 12:30:45 done", "at 12:30:45 done"},
		{"plain", "nothing here", "nothing here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Redact(c.in); got != c.want {
				t.Fatalf("Redact(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestHandlerDropsAddresses(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, slog.LevelDebug)
	addr := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 4567}
	l.Info("accepted 10.1.2.3:4567", "remote", addr, "ip", net.ParseIP("::1"),
		"err", errors.New("read tcp 10.1.2.3:4567: reset"), "s", "peer [::1]:99",
		slog.Group("g", "a", addr, "b", "x 127.0.0.1"))
	l.With("peer", addr).Warn("with")
	StdLogger(l).Printf("http: TLS handshake error from 127.0.0.1:5555: EOF")
	out := buf.String()
	for _, bad := range []string{"10.1.2.3", "::1", "127.0.0.1", "4567"} {
		if strings.Contains(out, bad) {
			t.Fatalf("log output leaks %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "TLS handshake error") || !strings.Contains(out, "accepted [addr]") {
		t.Fatalf("log output lost the message:\n%s", out)
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("from 127.0.0.1:25")
	f.Add("[::1]:1143")
	f.Fuzz(func(t *testing.T, s string) {
		out := Redact(s)
		if strings.Contains(out, "127.0.0.1") {
			t.Fatalf("leak: %q", out)
		}
	})
}
