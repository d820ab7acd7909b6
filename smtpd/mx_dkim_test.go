package smtpd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
)

// mxDKIMSigned signs msg for sender.test with a fresh Ed25519 key whose
// record it publishes in e's resolver.
func mxDKIMSigned(t *testing.T, e *mxEnv, msg string) string {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.res.SetTXT("sel._domainkey.sender.test", "v=DKIM1; k=ed25519; p="+base64.StdEncoding.EncodeToString(pub))
	var out bytes.Buffer
	err = dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
		Domain: "sender.test", Selector: "sel", Signer: priv,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestMXDKIM: a valid aligned signature passes DMARC even when SPF fails
// under p=reject; the same message altered after signing fails DKIM and is
// refused at DATA; the field name is matched in any case.
func TestMXDKIM(t *testing.T) {
	e := mxStart(t, nil)
	e.res.SetTXT("sender.test", "v=spf1 -all")
	e.res.SetTXT("_dmarc.sender.test", "v=DMARC1; p=reject")
	signed := mxDKIMSigned(t, e, mxTestMessage("signed", "body MARKER"))
	if !strings.HasPrefix(signed, "DKIM-Signature:") {
		t.Fatalf("signer output does not start with the signature: %.40q", signed)
	}

	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, signed, false); err != nil {
		t.Fatalf("signed message refused: %v", err)
	}
	got := e.stored(t)
	if len(got) != 1 {
		t.Fatalf("stored %d", len(got))
	}
	ar := mxFirstLine(got)
	for _, want := range []string{"spf=fail", "dkim=pass", "header.d=sender.test", "dmarc=pass"} {
		if !strings.Contains(ar, want) {
			t.Fatalf("Authentication-Results %q lacks %q", ar, want)
		}
	}

	lower := "dkim-signature:" + strings.TrimPrefix(signed, "DKIM-Signature:")
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, lower, false); err != nil {
		t.Fatalf("signature under a lower-case field name refused: %v", err)
	}
	if got = e.stored(t); len(got) != 2 || !strings.Contains(string(got[1]), "dkim=pass") {
		t.Fatalf("lower-case field: want a second message with dkim=pass, got %d", len(got))
	}

	tampered := strings.Replace(signed, "body MARKER", "body CHANGED", 1)
	err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, tampered, false)
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 {
		t.Fatalf("altered message: want 550 (DKIM fails, DMARC reject), got %v", err)
	}
	if n := len(e.stored(t)); n != 2 {
		t.Fatalf("altered message stored: %d messages", n)
	}
}

func TestMXHasField(t *testing.T) {
	hdr := []byte("From: a@b\r\nSubject: x\r\n y\r\ndkim-signature : v=1\r\n")
	for name, want := range map[string]bool{"DKIM-Signature": true, "subject": true, "To": false, "y": false, "Subject: x": false} {
		if got := mxHasField(hdr, name); got != want {
			t.Errorf("mxHasField(%q) = %v, want %v", name, got, want)
		}
	}
}
