package bridge

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"smessenger/pgp"
)

func TestPlaceholder(t *testing.T) {
	hdr := []byte("From: Carol <carol@example.net>\r\nSubject: secret plans\r\nContent-Type: multipart/encrypted; boundary=x;\r\n protocol=\"application/pgp-encrypted\"\r\nX-Smessenger-Signature: valid\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n")
	msg := placeholder(hdr, decryptReason(fmt.Errorf("x: %w", pgp.ErrNotForKey)))
	s := string(msg)
	for _, want := range []string{"Subject: secret plans", "From: Carol", "Content-Type: text/plain",
		"This message could not be decrypted: it is not encrypted to your key."} {
		if !strings.Contains(s, want) {
			t.Errorf("placeholder lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "multipart/encrypted") || strings.Contains(s, "X-Smessenger-Signature: valid") {
		t.Errorf("placeholder keeps the original's body description or a forged result:\n%s", s)
	}
	sum, err := pgp.Summarize(msg)
	if err != nil || sum.Structure.Type != "text" || sum.Envelope.Subject != "secret plans" || sum.Encrypted {
		t.Fatalf("placeholder summary %+v %v", sum, err)
	}
	// No header at all (the header blob did not open either).
	if s := string(placeholder(nil, "x")); !strings.Contains(s, "Subject: Message could not be decrypted") || !strings.Contains(s, "From: ") {
		t.Errorf("headerless placeholder:\n%s", s)
	}
}

func TestWithSignatureResult(t *testing.T) {
	in := []byte("Authentication-Results: smessenger.bridge; x-smessenger-pgp=pass\r\nAuthentication-Results: mx.example.net; dkim=pass\r\nX-Smessenger-Signature: valid\r\nSubject: hi\r\n\r\nbody\r\n")
	cases := []struct {
		st   pgp.SigStatus
		want string
	}{
		{pgp.SigValid, "x-smessenger-pgp=pass (signer ABCD)"},
		{pgp.SigInvalid, "x-smessenger-pgp=fail"},
		{pgp.SigUnknownSigner, "x-smessenger-pgp=neutral"},
		{pgp.SigUnsigned, "x-smessenger-pgp=none"},
	}
	for _, c := range cases {
		t.Run(c.st.String(), func(t *testing.T) {
			out := string(withSignatureResult(in, c.st, "ABCD"))
			if !strings.Contains(out, c.want) {
				t.Errorf("missing %q:\n%s", c.want, out)
			}
			if strings.Count(out, "smessenger.bridge;") != 1 || strings.Count(out, "X-Smessenger-Signature:") != 1 {
				t.Errorf("forged result kept:\n%s", out)
			}
			if !strings.Contains(out, "mx.example.net; dkim=pass") || !strings.HasSuffix(out, "\r\n\r\nbody\r\n") {
				t.Errorf("other fields or body lost:\n%s", out)
			}
		})
	}
}

func TestSplitMessage(t *testing.T) {
	fields, body := splitMessage([]byte("A: 1\r\nB: 2\r\n 3\r\n\r\nbody"))
	if len(fields) != 2 || fieldValue(fields[1]) != "2 3" || string(body) != "body" {
		t.Fatalf("fields %q body %q", fields, body)
	}
	fields, body = splitMessage([]byte("A: 1\nB: 2"))
	if len(fields) != 2 || body != nil {
		t.Fatalf("fields %q body %q", fields, body)
	}
}

// FuzzPlaceholder feeds arbitrary header bytes (they come from the server
// or from an outside sender) to the header code.
func FuzzPlaceholder(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n"))
	f.Add([]byte(" continuation first\r\nA\r\n\r\n"))
	f.Add([]byte("Authentication-Results: smessenger.bridge\n"))
	f.Fuzz(func(t *testing.T, hdr []byte) {
		msg := placeholder(hdr, "reason")
		if !bytes.Contains(msg, []byte("This message could not be decrypted: reason.")) {
			t.Fatal("reason lost")
		}
		out := withSignatureResult(hdr, pgp.SigValid, "F")
		if bytes.Count(out, []byte("X-Smessenger-Signature:")) != 1 {
			t.Fatalf("result field count wrong in %q", out)
		}
	})
}
