package pgp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "pgp", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSummarizePlain(t *testing.T) {
	raw := fixture(t, "plain.eml")
	s, err := Summarize(raw)
	if err != nil {
		t.Fatal(err)
	}
	e := s.Envelope
	if e.Subject != "Lunch on Friday" || e.MessageID != "<plain-1@example.org>" {
		t.Fatalf("subject %q id %q", e.Subject, e.MessageID)
	}
	if !e.Date.Equal(time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)) {
		t.Fatalf("date %v", e.Date)
	}
	if len(e.From) != 1 || e.From[0] != (Address{"Alice Example", "alice", "example.org"}) {
		t.Fatalf("from %+v", e.From)
	}
	if len(e.Sender) != 1 || len(e.ReplyTo) != 1 || e.Sender[0] != e.From[0] {
		t.Fatal("Sender/Reply-To must default to From")
	}
	if len(e.To) != 2 || e.To[1].Mailbox != "carol" || e.To[1].Host != "example.net" {
		t.Fatalf("to %+v", e.To)
	}
	if len(e.Cc) != 1 || !strings.HasPrefix(e.Cc[0].Name, "=?utf-8?") {
		t.Fatalf("cc name must stay in header form: %+v", e.Cc)
	}
	if strings.Join(e.InReplyTo, " ") != "<a@x> <b@y>" {
		t.Fatalf("in-reply-to %v", e.InReplyTo)
	}
	p := s.Structure
	if p.Type != "text" || p.Subtype != "plain" || p.Params["charset"] != "utf-8" || p.Encoding != "quoted-printable" {
		t.Fatalf("part %+v", p)
	}
	if p.Lines != 5 || s.Size != int64(len(raw)) || !bytes.HasSuffix(s.Header, []byte("\r\n\r\n")) {
		t.Fatalf("lines %d size %d", p.Lines, s.Size)
	}
	if p.Size != int64(len(raw)-len(s.Header)) {
		t.Fatalf("body size %d", p.Size)
	}
	if s.Preview != "Hi Bob, shall we meet at 12:30? Café on the corner. Alice" {
		t.Fatalf("preview %q", s.Preview)
	}
	if s.Encrypted {
		t.Fatal("not encrypted")
	}
}

func TestSummarizeStructures(t *testing.T) {
	s, err := Summarize(fixture(t, "alternative.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Structure.Subtype != "alternative" || len(s.Structure.Children) != 2 ||
		s.Structure.Children[1].Subtype != "html" || s.Preview != "Plain version of the text." {
		t.Fatalf("alternative: %+v preview %q", s.Structure, s.Preview)
	}
	s, err = Summarize(fixture(t, "attachment.eml"))
	if err != nil {
		t.Fatal(err)
	}
	att := s.Structure.Children[1]
	if att.Type != "application" || att.Subtype != "pdf" || att.Disposition != "attachment" ||
		att.DispositionParams["filename"] != "report.pdf" || att.Encoding != "base64" ||
		att.ID != "<att1@example.org>" || strings.Join(att.Language, ",") != "en,de" || att.Size != 114 {
		t.Fatalf("attachment %+v", att)
	}
	s, err = Summarize(fixture(t, "nested.eml"))
	if err != nil {
		t.Fatal(err)
	}
	fwd := s.Structure.Children[1]
	if fwd.Type != "message" || fwd.Envelope == nil || fwd.Inner == nil ||
		fwd.Envelope.MessageID != "<inner@example.org>" || fwd.Inner.Lines != 2 || fwd.Lines == 0 {
		t.Fatalf("nested %+v", fwd)
	}
	if s.Preview != "Forwarding this." {
		t.Fatalf("preview %q", s.Preview)
	}
}

func TestSummarizeMalformed(t *testing.T) {
	for _, name := range []string{"malformed.eml", "malformed2.eml"} {
		s, err := Summarize(fixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Structure.Type != "text" || s.Structure.Subtype != "plain" {
			t.Fatalf("%s: fallback %+v", name, s.Structure)
		}
	}
	s, _ := Summarize(fixture(t, "malformed.eml"))
	if !s.Envelope.Date.IsZero() || s.Envelope.Subject != "broken" {
		t.Fatalf("envelope %+v", s.Envelope)
	}
	if _, err := Summarize(nil); err != nil {
		t.Fatal(err)
	}
}

func TestSummarizeLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := 0; i < MaxParts+10; i++ {
		b.WriteString("--x\r\n\r\n.\r\n")
	}
	b.WriteString("--x--\r\n")
	if _, err := Summarize([]byte(b.String())); !errors.Is(err, ErrLimit) {
		t.Fatalf("parts: %v", err)
	}
	deep := "Content-Type: text/plain\r\n\r\nbottom\r\n"
	for i := 0; i < MaxDepth+5; i++ {
		deep = "Content-Type: message/rfc822\r\n\r\n" + deep
	}
	if _, err := Summarize([]byte(deep)); !errors.Is(err, ErrLimit) {
		t.Fatalf("depth: %v", err)
	}
}

func TestSummaryCodec(t *testing.T) {
	for _, name := range []string{"plain.eml", "alternative.eml", "attachment.eml", "nested.eml", "malformed.eml"} {
		s, err := Summarize(fixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		enc := EncodeSummary(s)
		d, err := DecodeSummary(enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(EncodeSummary(d), enc) || !d.Envelope.Date.Equal(s.Envelope.Date) || d.Preview != s.Preview {
			t.Fatalf("%s: round trip differs", name)
		}
		_, off1 := s.Envelope.Date.Zone()
		_, off2 := d.Envelope.Date.Zone()
		if off1 != off2 {
			t.Fatalf("zone offset lost")
		}
		for i := 0; i < len(enc); i++ {
			if _, err := DecodeSummary(enc[:i]); err == nil {
				t.Fatalf("%s: truncated at %d decoded", name, i)
			}
		}
		if _, err := DecodeSummary(append(bytes.Clone(enc), 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
	}
	if _, err := DecodeSummary([]byte("sMS\x02")); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func TestSealMessage(t *testing.T) {
	bob := testKey(t, "bob@example.org")
	raw := fixture(t, "attachment.eml")
	hb, bb, sum, err := SealMessage(raw, []*Key{bob.Public()}, SealOptions{AEAD: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(hb, []byte("Report")) || bytes.Contains(bb, []byte("attached")) {
		t.Fatal("plaintext visible in a blob")
	}
	s, err := OpenHeaderBlob(hb, bob)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(EncodeSummary(s), EncodeSummary(sum)) || s.Envelope.Subject != "Report" {
		t.Fatal("header blob differs")
	}
	body, err := OpenBodyBlob(bb, bob)
	if err != nil || !bytes.Equal(body, raw) {
		t.Fatalf("body blob: %v", err)
	}
	if _, err := OpenHeaderBlob(bb, bob); err == nil {
		t.Fatal("a body blob decoded as a header blob")
	}
}

// TestSummarizeDeepNestingMemory: parts are not copied once per nesting
// level. A 1 MiB part 30 multiparts deep used to cost about 30 MiB of
// copies (25 MB messages on the MX: 750 MB); now the whole summary stays
// within a few times the message.
func TestSummarizeDeepNestingMemory(t *testing.T) {
	const depth = 30
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\n")
	line := strings.Repeat("x", 98) + "\r\n"
	for b.Len() < 1<<20 {
		b.WriteString(line)
	}
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "\r\n--b%d--\r\n", i)
	}
	raw := b.Bytes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sum, err := Summarize(raw)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	p, levels := sum.Structure, 0
	for p.Type == "multipart" && len(p.Children) == 1 {
		p, levels = p.Children[0], levels+1
	}
	if levels != depth || p.Type != "text" || p.Size < 1_000_000 {
		t.Fatalf("structure: %d levels down to %s/%s of %d bytes", levels, p.Type, p.Subtype, p.Size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(len(raw)) {
		t.Fatalf("Summarize of a %d-byte message nested %d deep allocated %d bytes", len(raw), depth, alloc)
	}
}
