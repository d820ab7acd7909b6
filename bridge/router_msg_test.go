package bridge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func TestNormalizeNewlines(t *testing.T) {
	cases := map[string]string{
		"a\r\nb\r\n":    "a\r\nb\r\n",
		"a\nb\n":        "a\r\nb\r\n",
		"a\rb":          "a\r\nb",
		"a\r\r\nb":      "a\r\n\r\nb",
		"\n.\r\n":       "\r\n.\r\n",
		"x\r\n.\n.\r\n": "x\r\n.\r\n.\r\n",
		"":              "",
	}
	for in, want := range cases {
		got := NormalizeNewlines([]byte(in))
		if string(got) != want || !canonicalNewlines(got) {
			t.Errorf("NormalizeNewlines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrepareOutgoing(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr bool
		check   func(t *testing.T, o *outgoing)
	}{
		{name: "bcc-stripped-for-recipients", in: "From: a@x.org\nTo: b@y.org\nBcc: c@z.org\nResent-Bcc: d@z.org\n" +
			"Message-ID: <1@x>\nDate: Mon, 02 Jan 2006 15:04:05 +0000\n\nbody\n", check: func(t *testing.T, o *outgoing) {
			if bytes.Contains(o.public, []byte("Bcc")) || !bytes.Contains(o.sent, []byte("Bcc: c@z.org")) {
				t.Fatalf("public %q sent %q", o.public, o.sent)
			}
			if o.messageID != "<1@x>" || !o.visible["b@y.org"] || o.visible["c@z.org"] {
				t.Fatalf("%+v", o)
			}
			if !bytes.HasSuffix(o.public, []byte("\r\n\r\nbody\r\n")) {
				t.Fatalf("body: %q", o.public)
			}
		}},
		{name: "ids-added", in: "From: A <a@x.org>\r\nSubject: s\r\n\r\nb", check: func(t *testing.T, o *outgoing) {
			if !strings.HasSuffix(o.messageID, "@x.org>") || !bytes.Contains(o.public, []byte("Message-ID: "+o.messageID)) ||
				!bytes.Contains(o.public, []byte("Date: "+fixedNow.Format(time.RFC1123Z))) {
				t.Fatalf("%q", o.public)
			}
		}},
		{name: "received-stripped", in: "Received: from [192.0.2.7] by x\r\nX-Originating-IP: 192.0.2.7\r\n" +
			"From: a@x.org\r\n\r\nb", check: func(t *testing.T, o *outgoing) {
			if bytes.Contains(o.sent, []byte("192.0.2.7")) {
				t.Fatalf("IP kept: %q", o.sent)
			}
		}},
		{name: "no-body", in: "From: a@x.org\r\nSubject: s", check: func(t *testing.T, o *outgoing) {
			if !bytes.Contains(o.public, []byte("Subject: s\r\n")) || !canonicalNewlines(o.public) {
				t.Fatalf("%q", o.public)
			}
		}},
		{name: "no-from", in: "Subject: s\r\n\r\nb", wantErr: true},
		{name: "bad-from", in: "From: <<<\r\n\r\nb", wantErr: true},
		{name: "not-a-header", in: "this is not a header\r\n\r\nb", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "huge-header", in: "From: a@x.org\r\nX: " + strings.Repeat("a", maxOutgoingHeaderBytes) + "\r\n\r\n", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := prepareOutgoing([]byte(c.in), fixedNow, "a@x.org")
			if c.wantErr {
				if !errors.Is(err, ErrBadMessage) {
					t.Fatalf("err = %v, want ErrBadMessage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !canonicalNewlines(o.sent) || !canonicalNewlines(o.public) {
				t.Fatal("bare CR or LF survived")
			}
			c.check(t, o)
		})
	}
}

func TestSentDedupWindow(t *testing.T) {
	now := fixedNow
	d := newSentDedup(10*time.Minute, func() time.Time { return now })
	d.markCommitted("<A@x>", []string{"Bob@x.org"})
	d.markSent("<A@x>", 7)
	if uid, ok := d.sentUID("<a@x>"); !ok || uid != 7 {
		t.Fatalf("sentUID = %d %v", uid, ok)
	}
	if !d.committed("<A@x>", "bob@x.org") || d.committed("<A@x>", "carol@x.org") {
		t.Fatal("committed wrong")
	}
	now = now.Add(11 * time.Minute)
	if _, ok := d.sentUID("<A@x>"); ok || d.committed("<A@x>", "bob@x.org") {
		t.Fatal("entry outlived its window")
	}
	for i := 0; i < maxSentRemembered+10; i++ {
		d.markSent("<"+itoa(i)+"@x>", 1)
	}
	if len(d.byID) > maxSentRemembered || len(d.order) > maxSentRemembered {
		t.Fatalf("dedup grew to %d", len(d.byID))
	}
}

// FuzzPrepareOutgoing: any input yields a message without bare CR/LF and
// without Bcc in the public copy, or ErrBadMessage; never a panic.
func FuzzPrepareOutgoing(f *testing.F) {
	f.Add([]byte("From: a@x.org\r\nTo: b@y.org\r\nBcc: c@z.org\r\n\r\nbody\r\n"))
	f.Add([]byte("From: a@x.org\nBcc:\n x@y\n\n.\n"))
	f.Add([]byte("From: a@x.org\r\n bcc: x\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?q?=C3=A9?= <a@x.org>\rSubject: x\r\r\nb\r"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := prepareOutgoing(raw, fixedNow, "a@x.org")
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if !canonicalNewlines(o.sent) || !canonicalNewlines(o.public) {
			t.Fatalf("bare newline in %q", o.public)
		}
		fields, _ := splitMessage(o.public)
		for _, fl := range fields {
			if bccFields[fieldName(fl)] {
				t.Fatalf("Bcc survived: %q", o.public)
			}
		}
		if o.messageID == "" || len(o.from) == 0 {
			t.Fatalf("missing id or from: %+v", o)
		}
	})
}
