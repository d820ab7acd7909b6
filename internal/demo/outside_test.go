package demo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/bridge"
	"smessenger/internal/dnsres"
	"smessenger/internal/logging"
	"smessenger/pgp"
)

func startOutside(t *testing.T, dir string) (*Outside, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	o, err := NewOutside(dir, logging.New(logs, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("outside Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("outside did not stop")
		}
	})
	return o, logs
}

// TestOutsideSink delivers with a real SMTP client and finds the message,
// with its envelope, durably in the mail folder.
func TestOutsideSink(t *testing.T) {
	o, _ := startOutside(t, t.TempDir())
	c, err := smtp.Dial(o.SinkAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "Subject: hi\r\n\r\nsink test body\r\n"
	if err := c.SendMail("a@example.test", []string{"x@outside.test", "y@other.test"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
	ents, err := os.ReadDir(o.MailDir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("mail folder: %v, %d files", err, len(ents))
	}
	b, _ := os.ReadFile(filepath.Join(o.MailDir, ents[0].Name()))
	for _, want := range []string{"Return-Path: <a@example.test>\r\n", "Delivered-To: x@outside.test\r\n", "Delivered-To: y@other.test\r\n", "sink test body"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("stored message lacks %q:\n%s", want, b)
		}
	}
}

// TestOutsideWKD looks a key up through the bridge's real WKD client,
// trusting the demo CA and dialled to the outside world for any host.
func TestOutsideWKD(t *testing.T) {
	dir := t.TempDir()
	o, _ := startOutside(t, dir)
	k, err := pgp.GenerateKey("Carol", "carol@outside.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.KeysDir, "carol@outside.test.asc"), []byte(k.Public().PublicArmored()), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(o.KeysDir, "broken@outside.test.asc"), []byte("not a key"), 0o644)
	wkd, err := bridge.NewWKDClient(bridge.WKDConfig{DialContext: o.DialWKD, TLS: o.RootCAs(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := wkd.Lookup(ctx, "Carol@outside.test")
	if err != nil || got.Fingerprint() != k.Fingerprint() {
		t.Fatalf("lookup: %v", err)
	}
	for _, a := range []string{"nobody@outside.test", "broken@outside.test", "carol@elsewhere.test"} {
		if _, err := wkd.Lookup(ctx, a); !errors.Is(err, pgp.ErrNoKey) {
			t.Errorf("lookup %s: %v, want ErrNoKey", a, err)
		}
	}
	// A client that does not trust the demo CA gets nothing.
	untrusting, _ := bridge.NewWKDClient(bridge.WKDConfig{DialContext: o.DialWKD, Timeout: 10 * time.Second})
	if _, err := untrusting.Lookup(ctx, "carol@outside.test"); err == nil {
		t.Error("lookup without the demo CA succeeded")
	}
	// The CA survives a restart, so trust in it does too.
	before, _ := os.ReadFile(o.CAFile)
	o2, err := NewOutside(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	o2.sinkLn.Close()
	o2.wkdLn.Close()
	after, _ := os.ReadFile(o2.CAFile)
	if !bytes.Equal(before, after) || len(before) == 0 {
		t.Error("the demo CA changed on reopen")
	}
}

func TestBadCA(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("junk"), 0o644)
	if _, err := loadOrCreateCA(dir); !errors.Is(err, ErrBadCA) {
		t.Fatalf("half a CA: %v, want ErrBadCA", err)
	}
	os.WriteFile(filepath.Join(dir, "ca.key"), []byte("junk"), 0o600)
	if _, err := loadOrCreateCA(dir); !errors.Is(err, ErrBadCA) {
		t.Fatalf("junk CA: %v, want ErrBadCA", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); string(b) != "junk" {
		t.Error("a bad CA was overwritten")
	}
}

func TestKeyFileName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"carol@outside.test", "carol@outside.test.asc"},
		{"Carol.X+tag@Outside.Test", "carol.x+tag@outside.test.asc"},
		{"../etc@passwd", ""},
		{"a/b@c.test", ""},
		{"a@b.test/../x", ""},
		{".hidden@x.test", ""},
		{"a@@b.test", ""},
		{"a@b@c.test", ""},
		{"nodomain", ""},
		{"@x.test", ""},
		{"a@", ""},
		{"a\x00@x.test", ""},
		{"a\\b@x.test", ""},
		{"a..b@x.test", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := KeyFileName(tc.in)
			if tc.want == "" {
				if !errors.Is(err, ErrBadKeyName) {
					t.Fatalf("got %q, %v; want ErrBadKeyName", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzKeyFileName(f *testing.F) {
	for _, s := range []string{"carol@outside.test", "../a@b", "a/b@c", "A@B.C", "", "@", "a@b\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, err := KeyFileName(s)
		if err != nil {
			if !errors.Is(err, ErrBadKeyName) {
				t.Fatalf("error %v is not ErrBadKeyName", err)
			}
			return
		}
		if filepath.Base(name) != name || strings.ContainsAny(name, "/\\\x00") || strings.Contains(name, "..") ||
			strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".asc") {
			t.Fatalf("unsafe file name %q from %q", name, s)
		}
	})
}

func TestOutsideDNS(t *testing.T) {
	r := outsideDNS{host: "127.0.0.1"}
	ctx := context.Background()
	mx, err := r.LookupMX(ctx, "anything.example")
	if err != nil || len(mx) != 1 || mx[0].Host != "127.0.0.1" {
		t.Fatalf("MX: %v %v", mx, err)
	}
	if _, err := r.LookupTXT(ctx, "anything.example"); !errors.Is(err, dnsres.ErrNotFound) {
		t.Errorf("TXT: %v", err)
	}
	if _, err := r.LookupIPAddr(ctx, "anything.example"); !errors.Is(err, dnsres.ErrNotFound) {
		t.Errorf("A: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.LookupMX(cctx, "x"); !errors.Is(err, dnsres.ErrTemporary) {
		t.Errorf("cancelled MX: %v", err)
	}
}

func TestListenFallback(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := listen(busy.Addr().String(), false); err == nil {
		t.Fatal("listening on a busy port without fallback succeeded")
	}
	l, err := listen(busy.Addr().String(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr().String() == busy.Addr().String() || !strings.HasPrefix(l.Addr().String(), "127.0.0.1:") {
		t.Fatalf("fallback address %s", l.Addr())
	}
	if l, err := listen("", true); l != nil || err != nil {
		t.Fatalf("empty address: %v %v", l, err)
	}
}

// FuzzSanitizeHeader: an envelope address from the network can never end
// or add a header line in a stored message.
func FuzzSanitizeHeader(f *testing.F) {
	for _, s := range []string{"a@b.test", "a@b\r\nX-Evil: 1", "\x00\x1f", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := sanitizeHeader(s)
		if strings.ContainsAny(out, "\r\n\x00") || len(out) > len(s) {
			t.Fatalf("sanitizeHeader(%q) = %q", s, out)
		}
	})
}
