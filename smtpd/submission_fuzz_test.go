package smtpd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"smessenger/bridge"
)

// subFixedSender is the account side for fuzzing the session's message
// handling; it only answers Addresses (no routing happens in the fuzz).
type subFixedSender struct{ addrs []string }

func (s subFixedSender) Addresses() []string                                  { return s.addrs }
func (s subFixedSender) CheckRecipient(context.Context, string) error         { return nil }
func (s subFixedSender) Send(context.Context, string, []string, []byte) error { return nil }

// FuzzSubmissionMessage feeds arbitrary DATA through the submission
// path's message handling (newline normalisation and the From check): it
// never panics, never lets a bare CR or LF through, accepts only messages
// whose every From address is the user's, and answers with a 5xx otherwise.
func FuzzSubmissionMessage(f *testing.F) {
	f.Add([]byte("From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n\r\nhi\r\n"))
	f.Add([]byte("From: alice@example.org\nSubject: lf\n\n.\n"))
	f.Add([]byte("From: alice@example.org, mallory@evil.test\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?q?Al=C3=AFce?= <ALICE@example.org>\r\n\r\nx"))
	f.Add([]byte("Subject: no from\r\n\r\n"))
	f.Add([]byte("From:\r\n <alice@example.org>\r\n\r\n"))
	if files, _ := filepath.Glob("../testdata/*/*.eml"); len(files) > 0 {
		for _, p := range files[:min(len(files), 20)] {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	snd := subFixedSender{addrs: []string{"alice@example.org"}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		norm := bridge.NormalizeNewlines(raw)
		if bytes.Count(norm, []byte("\n")) != bytes.Count(norm, []byte("\r\n")) ||
			bytes.Count(norm, []byte("\r")) != bytes.Count(norm, []byte("\r\n")) {
			t.Fatalf("bare newline survived: %q", norm)
		}
		err := subCheckFrom(snd, norm)
		if err == nil {
			hdr, _ := mxSplitHeader(norm)
			list, perr := subAddrParser.ParseList(mxHeaderValue(hdr, "From"))
			if perr != nil || len(list) == 0 {
				t.Fatalf("accepted an unparsable From: %q", norm)
			}
			for _, a := range list {
				if !strings.EqualFold(a.Address, "alice@example.org") {
					t.Fatalf("accepted From %q", a.Address)
				}
			}
			return
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code < 500 || se.Code > 599 {
			t.Fatalf("refusal is not a 5xx: %v", err)
		}
	})
}
