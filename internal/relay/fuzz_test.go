package relay

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"smessenger/internal/store"
)

// FuzzBuildDSN feeds what the relay parses from outside before sealing a
// bounce: the remote's reply text (kept as LastError) and the queued
// payload's header section. A DSN must always come out and parse.
func FuzzBuildDSN(f *testing.F) {
	f.Add("550 5.1.1 no such user", []byte("From: a@b.test\r\nSubject: s\r\n\r\nbody\r\n"))
	f.Add("expired: 451 4.3.0 later", []byte(""))
	f.Add("5", []byte("Subject: \r\n\tfolded\r\n"))
	f.Add("", []byte("no header break at all"))
	f.Fuzz(func(t *testing.T, lastErr string, payload []byte) {
		e := store.QueueEntry{From: "s@example.org", Payload: payload, Created: time.Unix(0, 0),
			Recipients: []store.QueueRecipient{{Address: "x@remote.test", Done: true, Failed: true, LastError: sanitize(lastErr)}}}
		dsn, err := BuildDSN("mx.example.org", e, time.Unix(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		h, err := textproto.ReadHeader(bufioFrom(dsn))
		if err != nil || !strings.HasPrefix(h.Get("Content-Type"), "multipart/report") {
			t.Fatalf("DSN does not parse: %v", err)
		}
		if st := dsnStatus(lastErr); len(st) < 5 || (st[0] != '4' && st[0] != '5') {
			t.Fatalf("bad status %q", st)
		}
	})
}
