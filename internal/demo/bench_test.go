package demo

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/bridge"
	"smessenger/pgp"
)

// BenchmarkSinkDeliver measures one SMTP transaction into the outside
// world's sink, durable write included (what the relay waits for).
func BenchmarkSinkDeliver(b *testing.B) {
	o, err := NewOutside(b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := smtp.Dial(o.SinkAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("0123456789abcdef", 4)+"\r\n", 155) // ~10 KB
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for b.Loop() {
		if err := sendOne(c, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWKDLookup measures a key lookup through the bridge's WKD client
// over HTTPS to the outside world (connection reused, no cache).
func BenchmarkWKDLookup(b *testing.B) {
	dir := b.TempDir()
	o, err := NewOutside(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	k, err := pgp.GenerateKey("Carol", "carol@outside.test")
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(o.KeysDir, "carol@outside.test.asc"), []byte(k.Public().PublicArmored()), 0o644)
	wkd, err := bridge.NewWKDClient(bridge.WKDConfig{DialContext: o.DialWKD, TLS: o.RootCAs(), Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := wkd.Lookup(context.Background(), "carol@outside.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// sendOne runs one transaction on an open connection.
func sendOne(c *smtp.Client, msg string) error {
	if err := c.Mail("a@example.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("x@outside.test", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}
