package smtpd

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smessenger/internal/dnsres"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// FuzzMXData feeds what the MX parses before sealing: the newline and
// structure checks, the header lookups and the DMARC From parser.
func FuzzMXData(f *testing.F) {
	f.Add([]byte("From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: message/rfc822\r\n\r\nA: b\r\n\r\nc\r\n--q--\r\n"))
	f.Add([]byte("Subject: a\n.\n"))
	f.Add([]byte("\r\n\r\n"))
	seeds, _ := filepath.Glob("../testdata/mx/*.eml")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if mxCheckMessage(raw, 4096) == nil {
			_, _ = pgp.SummarizeLimited(raw, pgp.Limits{MaxParts: 50, MaxDepth: 8})
		}
		hdr, body := mxSplitHeader(raw)
		if len(hdr)+len(body) > len(raw) {
			t.Fatal("split grew the message")
		}
		_ = mxHeaderValue(hdr, "Content-Type")
		_ = mxHeaderFromDomain(hdr)
	})
}

// FuzzSPF feeds SPF records to the parser and the evaluator.
func FuzzSPF(f *testing.F) {
	for _, s := range []string{"v=spf1 -all", "v=spf1 ip4:192.0.2.0/24 include:x.test ~all",
		"v=spf1 a/24//64 mx:%{d} exists:%{ir}.%{l1r+-}._spf.%{d} redirect=y.test", "v=spf1 ip6:::1/128 ptr ?all"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rec string) {
		_, _ = ParseSPF(rec)
		r := dnsres.NewStatic()
		r.SetTXT("x.test", rec)
		r.SetTXT("y.test", rec)
		_ = CheckSPF(context.Background(), r, net.ParseIP("192.0.2.1"), "bob@x.test", "h.test")
	})
}

// FuzzMXRcpt feeds RCPT paths to the address check: it must never panic,
// and whatever it accepts is lower-case, has one @ and none of the
// characters that make a naive MX relay.
func FuzzMXRcpt(f *testing.F) {
	for _, s := range []string{"alice@example.org", "ALICE@Example.ORG", "@a.test:b@c.test", "a%b@c.test",
		"\"a@b\"@c.test", "b!a@c.test", "", "@", "a@", "x@y@z.test", "a\r\n@b.test"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, to string) {
		addr, err := mxLocalAddress(to)
		if err != nil {
			if addr != "" {
				t.Fatal("address returned with an error")
			}
			return
		}
		local, domain, ok := strings.Cut(addr, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(local, "%!@\"\\:") || addr != store.NormalizeAddress(addr) {
			t.Fatalf("accepted %q as %q", to, addr)
		}
	})
}

// FuzzMXReadData checks the DATA buffer handling: what is read comes back
// intact after the headroom, and prepending keeps the message unchanged.
func FuzzMXReadData(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"), "Authentication-Results: x; none\r\n")
	f.Add([]byte{}, "")
	f.Add(make([]byte, 70000), strings.Repeat("A", 2000))
	f.Fuzz(func(t *testing.T, data []byte, hdr string) {
		buf, err := mxReadData(make([]byte, 0, 5000), bytes.NewReader(data))
		if err != nil || !bytes.Equal(buf[mxHeadroom:], data) {
			t.Fatalf("read %d bytes, want %d (%v)", len(buf)-mxHeadroom, len(data), err)
		}
		msg := mxPrepend(buf, hdr)
		if string(msg) != hdr+string(data) {
			t.Fatal("prepend changed the message")
		}
	})
}

// mxNewlinesReference is the obvious byte-by-byte definition of "CRLF
// only", against which the vectorised checks are fuzzed.
func mxNewlinesReference(p []byte) bool {
	for i, b := range p {
		if b == '\r' && (i+1 >= len(p) || p[i+1] != '\n') {
			return false
		}
		if b == '\n' && (i == 0 || p[i-1] != '\r') {
			return false
		}
	}
	return true
}

// FuzzMXNewlines compares mxCheckNewlines, and the connection scanner fed
// the same bytes in two reads split anywhere, with the reference.
func FuzzMXNewlines(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "a\nb", "a\rb", "\r\r\n", "\r\n.\r\n", "x\r", "\n", "\r"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, p []byte, cut uint8) {
		want := mxNewlinesReference(p)
		if got := mxCheckNewlines(p) == nil; got != want {
			t.Fatalf("mxCheckNewlines(%q) = %v, want %v", p, got, want)
		}
		k := int(cut) % (len(p) + 1)
		c := &mxConn{}
		ok := c.scan(p[:k]) && c.scan(p[k:])
		// A trailing CR waits for the next read; the stream is clean only
		// if nothing is left pending.
		if got := ok && !c.pendCR; got != want {
			t.Fatalf("scan(%q | %q) = %v, want %v", p[:k], p[k:], got, want)
		}
	})
}
