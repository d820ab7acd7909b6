package smtpd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// mxNeedTool returns the path of an external tool, or ends the test: a
// failure in CI (which must have it), a skip elsewhere.
func mxNeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// mxGPGEncrypt encrypts plain to key with the real gpg in a throw-away
// GNUPGHOME and returns the ASCII-armored message with CRLF line ends.
func mxGPGEncrypt(t *testing.T, key *pgp.Key, plain []byte) []byte {
	t.Helper()
	gpg := mxNeedTool(t, "gpg")
	home, err := os.MkdirTemp("", "mxgpg")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(home, 0o700)
	t.Cleanup(func() {
		if c, err := exec.LookPath("gpgconf"); err == nil {
			_ = exec.Command(c, "--homedir", home, "--kill", "all").Run()
		}
		_ = os.RemoveAll(home)
	})
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		base := []string{"--homedir", home, "--batch", "--yes", "--no-tty", "--trust-model", "always"}
		cmd := exec.Command(gpg, append(base, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	run(key.PublicBinary(), "--import")
	armored := run(plain, "--armor", "--encrypt", "--recipient", key.Fingerprint())
	return bytes.ReplaceAll(bytes.ReplaceAll(armored, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// A PGP/MIME message encrypted by gpg outside is stored as received in the
// body blob; the header blob carries its outer headers and says it is
// encrypted; the recipient's bridge decrypts it with pgp.DecryptMessage.
func TestMXKeepsGPGEncryptedPGPMIME(t *testing.T) {
	e := mxStart(t, nil)
	inner := "Content-Type: text/plain; charset=utf-8\r\n\r\nthe INNER-SECRET text\r\n"
	armored := mxGPGEncrypt(t, e.key, []byte(inner))
	msg := "From: Bob <bob@sender.test>\r\nTo: alice@example.org\r\nSubject: ...\r\n" +
		"Message-ID: <pgp1@sender.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n" +
		"--b1\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n" +
		string(armored) + "\r\n--b1--\r\n"
	if !pgp.IsEncrypted([]byte(msg)) {
		t.Fatal("test message is not recognised as PGP/MIME")
	}
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, msg, true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	metas, err := e.st.ListMessages(ctx, e.acct, "INBOX", 1)
	if err != nil || len(metas) != 1 {
		t.Fatalf("stored: %d %v", len(metas), err)
	}
	hbs, err := e.st.HeaderBlobs(ctx, e.acct, []store.MessageID{metas[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := pgp.OpenHeaderBlob(hbs[0], e.key)
	if err != nil {
		t.Fatalf("header blob: %v", err)
	}
	if !sum.Encrypted {
		t.Fatal("summary of a PGP/MIME message not marked Encrypted")
	}
	if !bytes.Contains(sum.Header, []byte("Subject: ...")) || !bytes.HasPrefix(sum.Header, []byte("Authentication-Results: mx.example.org;")) {
		t.Fatalf("header blob lacks the outer headers: %q", sum.Header)
	}
	body := e.stored(t)[0]
	ar, rest, _ := strings.Cut(string(body), "\r\n")
	if rest != msg || !strings.HasPrefix(ar, "Authentication-Results:") {
		t.Fatal("PGP/MIME message not kept as received (plus Authentication-Results)")
	}
	dec, err := pgp.DecryptMessage(body, e.key, nil)
	if err != nil {
		t.Fatalf("bridge-side decryption: %v", err)
	}
	if !dec.Encrypted || !bytes.Contains(dec.Message, []byte("the INNER-SECRET text")) {
		t.Fatalf("decrypted %v %q", dec.Encrypted, dec.Message)
	}
}

// A plaintext message's header blob is the sealed summary: subject,
// sender and preview are there for the message list, Encrypted is false.
func TestMXHeaderBlobIsSealedSummary(t *testing.T) {
	e := mxStart(t, nil)
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, mxTestMessage("hello there", "preview text"), false); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	metas, err := e.st.ListMessages(ctx, e.acct, "INBOX", 1)
	if err != nil || len(metas) != 1 {
		t.Fatalf("stored: %d %v", len(metas), err)
	}
	hbs, err := e.st.HeaderBlobs(ctx, e.acct, []store.MessageID{metas[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(hbs[0], []byte("hello there")) {
		t.Fatal("header blob holds plaintext")
	}
	sum, err := pgp.OpenHeaderBlob(hbs[0], e.key)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Encrypted || sum.Envelope.Subject != "hello there" || !strings.Contains(sum.Preview, "preview text") {
		t.Fatalf("summary: enc=%v subject=%q preview=%q", sum.Encrypted, sum.Envelope.Subject, sum.Preview)
	}
	if len(sum.Envelope.From) != 1 || sum.Envelope.From[0].Host != "sender.test" {
		t.Fatalf("envelope from %+v", sum.Envelope.From)
	}
}

// One message to two accounts is sealed separately to each account's key;
// neither copy opens with the other's key.
func TestMXTwoAccountsEachSealed(t *testing.T) {
	e := mxStart(t, nil)
	ctx := context.Background()
	bobKey, err := pgp.GenerateKey("Carol", "carol@example.org")
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.st.CreateAccount(ctx, "carol@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetPublicKey(ctx, c.ID, bobKey.PublicBinary()); err != nil {
		t.Fatal(err)
	}
	msg := mxTestMessage("to both", "shared body")
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org", "carol@example.org", "al@example.org"}, msg, false); err != nil {
		t.Fatal(err)
	}
	if got := e.stored(t); len(got) != 1 || !strings.HasSuffix(string(got[0]), msg) {
		t.Fatalf("alice has %d copies", len(got))
	}
	metas, err := e.st.ListMessages(ctx, c.ID, "INBOX", 1)
	if err != nil || len(metas) != 1 {
		t.Fatalf("carol has %d copies: %v", len(metas), err)
	}
	bb, err := e.st.BodyBlob(ctx, c.ID, metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgp.OpenBodyBlob(bb, e.key); err == nil {
		t.Fatal("carol's copy opens with alice's key")
	}
	plain, err := pgp.OpenBodyBlob(bb, bobKey)
	if err != nil || !strings.HasSuffix(string(plain), msg) {
		t.Fatalf("carol's copy: %v", err)
	}
	hbs, err := e.st.HeaderBlobs(ctx, c.ID, []store.MessageID{metas[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := pgp.OpenHeaderBlob(hbs[0], bobKey); err != nil || sum.Envelope.Subject != "to both" {
		t.Fatalf("carol's header blob: %v", err)
	}
}
