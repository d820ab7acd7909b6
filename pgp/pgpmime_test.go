package pgp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

func headerOf(t *testing.T, msg []byte) textproto.Header {
	t.Helper()
	_, _, h := splitMessage(msg)
	return h
}

func TestPGPMIMERoundTrip(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	ac := &AutocryptHeader{Addr: "alice@example.org", PreferEncrypt: true, KeyData: alice.PublicBinary()}
	for _, name := range []string{"plain.eml", "alternative.eml", "attachment.eml", "nested.eml"} {
		t.Run(name, func(t *testing.T) {
			raw := fixture(t, name)
			enc, err := BuildEncrypted(raw, []*Key{bob.Public(), alice.Public()}, alice, ac)
			if err != nil {
				t.Fatal(err)
			}
			h := headerOf(t, enc)
			if h.Get("Subject") != obscuredSubject || !IsEncrypted(enc) {
				t.Fatalf("outer subject %q", h.Get("Subject"))
			}
			if got, err := ParseAutocrypt(h.Get("Autocrypt")); err != nil || !bytes.Equal(got.KeyData, alice.PublicBinary()) {
				t.Fatalf("autocrypt header: %v", err)
			}
			orig := headerOf(t, raw)
			if bytes.Contains(enc, []byte(orig.Get("Subject"))) {
				t.Fatal("real subject leaked")
			}
			d, err := DecryptMessage(enc, bob, []*Key{alice.Public()})
			if err != nil {
				t.Fatal(err)
			}
			if !d.Encrypted || d.Signature != SigValid || d.SignerFingerprint != alice.Fingerprint() {
				t.Fatalf("decrypted %+v", d)
			}
			got := headerOf(t, d.Message)
			for _, k := range []string{"Subject", "From", "To", "Date", "Message-Id"} {
				if got.Get(k) != orig.Get(k) {
					t.Fatalf("%s: %q, want %q", k, got.Get(k), orig.Get(k))
				}
			}
			s1, _ := Summarize(raw)
			s2, _ := Summarize(d.Message)
			if s1.Preview != s2.Preview || len(s1.Structure.Children) != len(s2.Structure.Children) {
				t.Fatalf("content changed: %q vs %q", s1.Preview, s2.Preview)
			}
		})
	}
}

func TestBuildSigned(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	raw := fixture(t, "plain.eml")
	signed, err := BuildSigned(raw, alice)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecryptMessage(signed, bob, []*Key{alice.Public()})
	if err != nil || d.Encrypted || !bytes.Equal(d.Message, signed) || d.Signature != SigValid {
		t.Fatalf("verify: %v %+v", err, d)
	}
	tampered := bytes.Replace(signed, []byte("12:30"), []byte("13:30"), 1)
	d, _ = DecryptMessage(tampered, bob, []*Key{alice.Public()})
	if d.Signature != SigInvalid {
		t.Fatalf("tampered: %v", d.Signature)
	}
	d, _ = DecryptMessage(signed, bob, nil)
	if d.Signature != SigUnknownSigner {
		t.Fatalf("unknown: %v", d.Signature)
	}
}

func TestDecryptMessageInlineAndPlain(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	ct, _ := Seal([]byte("inline secret \u00e9\n"), []*Key{bob}, SealOptions{Signer: alice})
	var arm bytes.Buffer
	w, _ := armorEncoder(&arm)
	_, _ = w.Write(ct)
	_ = w.Close()
	msg := []byte("From: alice@example.org\r\nSubject: inline\r\n\r\n" + arm.String() + "\r\n")
	if !IsEncrypted(msg) {
		t.Fatal("inline not detected")
	}
	d, err := DecryptMessage(msg, bob, []*Key{alice})
	if err != nil || !d.Encrypted || d.Signature != SigValid || !bytes.Contains(d.Message, []byte("inline secret \u00e9")) {
		t.Fatalf("inline: %v %+v", err, d)
	}
	if hh := headerOf(t, d.Message); hh.Get("Subject") != "inline" {
		t.Fatal("outer header lost")
	}
	plain := fixture(t, "plain.eml")
	d, err = DecryptMessage(plain, bob, nil)
	if err != nil || d.Encrypted || !bytes.Equal(d.Message, plain) {
		t.Fatalf("plain: %v", err)
	}
	// EFAIL: an encrypted part inside a multipart/mixed is not decrypted.
	mixed := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n<img src=\"http://evil/\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		arm.String() + "\r\n--b--\r\n")
	d, err = DecryptMessage(mixed, bob, nil)
	if err != nil || d.Encrypted || !bytes.Equal(d.Message, mixed) || IsEncrypted(mixed) {
		t.Fatalf("nested encrypted part was decrypted: %v", err)
	}
	// A PGP/MIME message not for bob fails cleanly.
	enc, _ := BuildEncrypted(plain, []*Key{alice}, nil, nil)
	if _, err := DecryptMessage(enc, bob, nil); err == nil {
		t.Fatal("decrypted a message for another key")
	}
	broken := bytes.Replace(enc, []byte("\nVersion: 1"), []byte("\nVersion: 9"), 1)
	if _, err := DecryptMessage(broken, alice, nil); err == nil {
		t.Fatal("bad version part accepted")
	}
}

// TestInteropGPGPGPMIME: gpg decrypts the raw data part of what we build,
// and verifies the detached signature of a multipart/signed.
func TestInteropGPGPGPMIME(t *testing.T) {
	g := newGPG(t)
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	sec, _ := bob.ExportPrivate([]byte("pw"))
	g.must(sec, "--import")
	g.must(alice.PublicBinary(), "--import")
	raw := fixture(t, "attachment.eml")
	enc, err := BuildEncrypted(raw, []*Key{bob.Public()}, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body, h := splitMessage(enc)
	_, params, _ := (&msgHeader{h}).contentType()
	parts := rawParts(body, params["boundary"], 3)
	if len(parts) != 2 {
		t.Fatalf("%d parts", len(parts))
	}
	_, armored, _ := splitMessage(parts[1])
	out, status, err := g.run(armored, "--decrypt")
	if err != nil || !strings.Contains(status, "VALIDSIG "+alice.Fingerprint()) {
		t.Fatalf("gpg: %v\n%s", err, status)
	}
	ih := headerOf(t, out)
	if !strings.Contains(ih.Get("Content-Type"), `hp="cipher"`) && !strings.Contains(ih.Get("Content-Type"), "hp=cipher") ||
		ih.Get("Subject") != "Report" {
		t.Fatalf("inner header: %q %q", ih.Get("Content-Type"), ih.Get("Subject"))
	}
	signed, _ := BuildSigned(raw, alice)
	_, body, h = splitMessage(signed)
	_, params, _ = (&msgHeader{h}).contentType()
	parts = rawParts(body, params["boundary"], 3)
	dir := t.TempDir()
	_, sig, _ := splitMessage(parts[1])
	data := writeFile(t, dir, "data", parts[0])
	sigf := writeFile(t, dir, "data.asc", sig)
	if _, status, err := g.run(nil, "--verify", sigf, data); err != nil || !strings.Contains(status, "VALIDSIG "+alice.Fingerprint()) {
		t.Fatalf("gpg --verify: %v\n%s", err, status)
	}
}

// TestVerifySignedLineEndings: a multipart/signed message whose line
// endings were converted to LF (an mbox, a Unix maildir) or back to CRLF
// still verifies, because the signed part is canonicalised first (RFC 3156
// section 5); a changed word still fails.
func TestVerifySignedLineEndings(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	for _, name := range []string{"plain.eml", "attachment.eml", "nested.eml"} {
		t.Run(name, func(t *testing.T) {
			signed, err := BuildSigned(fixture(t, name), alice)
			if err != nil {
				t.Fatal(err)
			}
			lf := bytes.ReplaceAll(signed, []byte("\r\n"), []byte("\n"))
			if bytes.Equal(lf, signed) {
				t.Fatal("BuildSigned did not write CRLF")
			}
			for variant, msg := range map[string][]byte{"LF": lf, "CRLF again": crlf(lf)} {
				d, err := DecryptMessage(msg, bob, []*Key{alice.Public()})
				if err != nil || d.Signature != SigValid || d.SignerFingerprint != alice.Fingerprint() {
					t.Fatalf("%s: %v %+v", variant, err, d)
				}
			}
			tampered := bytes.Replace(lf, []byte("Subject: "), []byte("Subject: X"), 2)
			if d, _ := DecryptMessage(tampered, bob, []*Key{alice.Public()}); d.Signature != SigInvalid {
				t.Fatalf("tampered LF message: %v", d.Signature)
			}
		})
	}
}
