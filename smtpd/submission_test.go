package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smessenger/bridge"
	"smessenger/imapd"
	"smessenger/pgp"
)

// TestSubmission runs the end-to-end cases over real SMTP against real
// bridges and a real server node.
func TestSubmission(t *testing.T) {
	e := subStart(t)
	ctx := context.Background()
	carol, err := pgp.GenerateKey("Carol", "carol@ext.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.alice.contacts.Import([]byte(carol.PublicArmored())); err != nil {
		t.Fatal(err)
	}
	c := subClient(t, e.addr, subAlice, e.alice.password)
	bobInbox, aliceSent := 0, 0

	t.Run("internal-attachment-and-sent-dedup", func(t *testing.T) {
		msg := subMessage(subAlice, subBob, "int1", 200<<10)
		if err := subSend(c, subAlice, []string{subBob}, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		bobInbox++
		aliceSent++
		if got := subWaitBody(t, e.bob.acct, "INBOX", bobInbox); !bytes.Equal(got, msg) {
			t.Fatalf("bob's copy differs (%d vs %d bytes)", len(got), len(msg))
		}
		subWaitBody(t, e.alice.acct, "Sent", aliceSent)
		// Thunderbird appends its own copy to Sent right after the 250.
		if _, _, err := e.alice.acct.Append(ctx, "Sent", msg, []string{`\Seen`}, time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if got := subWaitBody(t, e.alice.acct, "Sent", aliceSent); !bytes.Equal(got, msg) {
			t.Fatal("Sent copy differs from what was sent")
		}
	})

	t.Run("external-with-key-gpg", func(t *testing.T) {
		gpg := subNeedTool(t, "gpg")
		msg := []byte("From: Alice <" + subAlice + ">\r\nTo: Carol <carol@ext.test>\r\nSubject: external secret\r\n" +
			"Message-ID: <ext1@example.org>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n\r\nthe eagle lands at dawn\r\n")
		if err := subSend(c, subAlice, []string{"carol@ext.test"}, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		aliceSent++
		q := subQueue(t, e.env.Store)
		if len(q) != 1 || q[0].Recipients[0].Address != "carol@ext.test" || q[0].From != subAlice {
			t.Fatalf("queue: %+v", q)
		}
		p := q[0].Payload
		if bytes.Contains(p, []byte("eagle")) || bytes.Contains(p, []byte("external secret")) ||
			!bytes.Contains(p, []byte("multipart/encrypted")) || !bytes.Contains(p, []byte("Subject: ...")) {
			t.Fatalf("payload leaks or is not PGP/MIME:\n%s", p)
		}
		out := gpgDecrypt(t, gpg, carol, e.alice.acct.Key().Public(), subArmored(t, p))
		for _, want := range []string{"Subject: external secret", "From: Alice <" + subAlice + ">",
			"Message-Id: <ext1@example.org>", "the eagle lands at dawn", "hp=cipher"} {
			if !strings.Contains(strings.ReplaceAll(out, "Message-ID", "Message-Id"), want) {
				t.Fatalf("decrypted payload lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("keyless-refused-at-rcpt", func(t *testing.T) {
		err := subSend(c, subAlice, []string{subBob, "erin@ext.test"}, subMessage(subAlice, subBob, "x", 10))
		if subCode(err) != 550 || !strings.Contains(err.Error(), "erin@ext.test") ||
			!strings.Contains(err.Error(), "unencrypted") {
			t.Fatalf("RCPT of a key-less recipient: %v", err)
		}
	})

	t.Run("mixed-and-bcc", func(t *testing.T) {
		msg := []byte("From: " + subAlice + "\r\nTo: Carol <carol@ext.test>\r\nBcc: " + subBob +
			"\r\nSubject: mixed\r\nMessage-ID: <mixed1@example.org>\r\n\r\nhello all\r\n")
		if err := subSend(c, subAlice, []string{"carol@ext.test", subBob}, msg); err != nil {
			t.Fatal(err)
		}
		bobInbox++
		aliceSent++
		got := subWaitBody(t, e.bob.acct, "INBOX", bobInbox)
		if bytes.Contains(got, []byte("Bcc")) || !bytes.Contains(got, []byte("hello all")) {
			t.Fatalf("bob's copy:\n%s", got)
		}
		q := subQueue(t, e.env.Store)
		if len(q) != 2 {
			t.Fatalf("queue has %d entries", len(q))
		}
		for _, en := range q {
			d, err := pgp.DecryptMessage(en.Payload, carol, nil)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(d.Message, []byte("Bcc")) || bytes.Contains(d.Message, []byte(subBob)) {
				t.Fatalf("carol sees the Bcc:\n%s", d.Message)
			}
		}
		if sent := subWaitBody(t, e.alice.acct, "Sent", aliceSent); !bytes.Contains(sent, []byte("Bcc: "+subBob)) {
			t.Fatalf("Sent copy lost the Bcc:\n%s", sent)
		}
	})

	t.Run("foreign-from", func(t *testing.T) {
		if err := c.Mail("mallory@evil.test", nil); subCode(err) != 553 || !strings.Contains(err.Error(), "mallory@evil.test") {
			t.Fatalf("MAIL FROM foreign: %v", err)
		}
		c.Reset()
		msg := []byte("From: Bob <" + subBob + ">\r\nTo: " + subBob + "\r\nSubject: x\r\n\r\nx\r\n")
		if err := subSend(c, subAlice, []string{subBob}, msg); subCode(err) != 550 || !strings.Contains(err.Error(), subBob) {
			t.Fatalf("foreign From header: %v", err)
		}
	})

	t.Run("wrong-password-and-no-auth", func(t *testing.T) {
		c2, err := smtp.Dial(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if err := c2.Mail(subAlice, nil); subCode(err) != 530 {
			t.Fatalf("MAIL without AUTH: %v", err)
		}
		if err := c2.Auth(sasl.NewPlainClient("", subAlice, "wrong")); subCode(err) != 535 {
			t.Fatalf("wrong password: %v", err)
		}
		if err := c2.Auth(sasl.NewPlainClient("", subBob, e.alice.password)); subCode(err) != 535 {
			t.Fatalf("alice's password for bob: %v", err)
		}
		// LOGIN works with the right password.
		if err := c2.Auth(sasl.NewLoginClient(subAlice, e.alice.password)); err != nil {
			t.Fatalf("AUTH LOGIN: %v", err)
		}
	})

	t.Run("bare-newlines-normalised", func(t *testing.T) {
		raw := "From: " + subAlice + "\nTo: " + subBob + "\nSubject: lf\nMessage-ID: <lf1@example.org>\n\nline1\nline2\rline3\r\n"
		if err := subSend(c, subAlice, []string{subBob}, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		bobInbox++
		aliceSent++
		got := subWaitBody(t, e.bob.acct, "INBOX", bobInbox)
		if bytes.Count(got, []byte("\n")) != bytes.Count(got, []byte("\r\n")) ||
			bytes.Count(got, []byte("\r")) != bytes.Count(got, []byte("\r\n")) || !bytes.Contains(got, []byte("line1\r\nline2\r\nline3\r\n")) {
			t.Fatalf("bare CR/LF survived: %q", got)
		}
		if bytes.Contains(got, []byte("Received:")) || bytes.Contains(got, []byte("127.0.0.1")) {
			t.Fatalf("trace field with IP added: %q", got)
		}
	})

	t.Run("ten-megabytes", func(t *testing.T) {
		msg := subMessage(subAlice, subBob, "big1", 10<<20)
		if err := subSend(c, subAlice, []string{subBob}, msg); err != nil {
			t.Fatalf("send 10 MB: %v", err)
		}
		bobInbox++
		aliceSent++
		if got := subWaitBody(t, e.bob.acct, "INBOX", bobInbox); !bytes.Equal(got, msg) {
			t.Fatal("10 MB message differs")
		}
	})

	t.Run("swaks", func(t *testing.T) {
		swaks := subNeedTool(t, "swaks")
		body := subMessage(subAlice, subBob, "swaks1", 1000)
		f := filepath.Join(t.TempDir(), "m.eml")
		os.WriteFile(f, body, 0o600)
		out, err := exec.Command(swaks, "--server", e.addr, "--auth", "LOGIN", "--auth-user", subAlice,
			"--auth-password", e.alice.password, "--from", subAlice, "--to", subBob, "--data", f,
			"--helo", "swaks.test", "--timeout", "60").CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
		bobInbox++
		aliceSent++
		if got := subWaitBody(t, e.bob.acct, "INBOX", bobInbox); !bytes.Contains(got, []byte("Message-ID: <swaks1@example.org>")) {
			t.Fatalf("swaks message not delivered:\n%.300s", got)
		}
	})
	if t.Failed() {
		return
	}
	// Everything was filed in Sent exactly once.
	subWaitBody(t, e.alice.acct, "Sent", aliceSent)
}

// gpgDecrypt decrypts armored with key in a temporary GNUPGHOME that also
// knows signer's public key, and checks that gpg reports a good signature.
func gpgDecrypt(t *testing.T, gpg string, key, signer *pgp.Key, armored []byte) string {
	t.Helper()
	home := t.TempDir()
	os.Chmod(home, 0o700)
	sec, err := key.ExportPrivate([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) ([]byte, string) {
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback",
			"--passphrase", "pw"}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, stderr.String())
		}
		return out, stderr.String()
	}
	run(sec, "--import")
	run([]byte(signer.PublicArmored()), "--import")
	out, diag := run(armored, "--decrypt")
	if !strings.Contains(diag, "Good signature") {
		t.Fatalf("gpg did not verify the signature:\n%s", diag)
	}
	return string(out)
}

// TestSubmissionPolicyPlainAndLimits: policy plain queues key-less mail as
// written; SIZE over the limit gets 552; STARTTLS then AUTH works.
func TestSubmissionPolicyPlainAndLimits(t *testing.T) {
	e := subStart(t)
	plain, err := bridge.NewRouter(bridge.RouterConfig{Server: e.alice.acct.Server(), Key: e.alice.acct.Key(),
		Addresses: e.alice.acct.Addresses, Policy: bridge.PolicyPlain})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := imapd.GenerateLocalCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := subServe(t, SubmissionConfig{
		Auth: func(user, pass string) (Sender, bool) {
			return plain, e.alice.acct.CheckPassword(user, pass)
		},
		TLS:             &tls.Config{Certificates: []tls.Certificate{cert}},
		MaxMessageBytes: 1 << 20,
	})
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pem)
	c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", subAlice, e.alice.password)); err != nil {
		t.Fatal(err)
	}
	msg := []byte("From: " + subAlice + "\r\nTo: erin@ext.test\r\nSubject: plain one\r\nMessage-ID: <p1@example.org>\r\n\r\nhi erin\r\n")
	if err := subSend(c, subAlice, []string{"erin@ext.test"}, msg); err != nil {
		t.Fatalf("plain send: %v", err)
	}
	q := subQueue(t, e.env.Store)
	if len(q) != 1 || !bytes.Contains(q[0].Payload, []byte("hi erin")) || !bytes.Contains(q[0].Payload, []byte("Autocrypt: addr=")) {
		t.Fatalf("queue %+v", q)
	}
	big := subMessage(subAlice, subBob, "big", 2<<20)
	if err := subSend(c, subAlice, []string{subBob}, big); subCode(err) != 552 {
		t.Fatalf("oversize: %v", err)
	}
	if err := c.Mail(subAlice, &smtp.MailOptions{Size: 5 << 20}); subCode(err) != 552 {
		t.Fatalf("SIZE over limit: %v", err)
	}
}

// TestSubmissionRemoteNeedsTLS: AUTH without TLS from a non-loopback peer
// is refused. The peer address is faked by wrapping the listener.
func TestSubmissionRemoteNeedsTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSubmission(SubmissionConfig{Auth: func(string, string) (Sender, bool) {
		t.Error("Auth called for a remote plaintext client")
		return nil, false
	}})
	go s.Serve(subRemoteListener{ln})
	defer s.Close()
	c, err := smtp.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "a@b", "c")); subCode(err) != 523 {
		t.Fatalf("remote plaintext AUTH: %v", err)
	}
}

type subRemoteListener struct{ net.Listener }

func (l subRemoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return subRemoteConn{c}, nil
}

type subRemoteConn struct{ net.Conn }

func (subRemoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4242}
}

// TestSubmissionReplyMapping: every routing sentinel maps to its reply.
func TestSubmissionReplyMapping(t *testing.T) {
	s := &subSession{sub: NewSubmission(SubmissionConfig{Auth: func(string, string) (Sender, bool) { return nil, false }})}
	cases := []struct {
		err  error
		code int
	}{
		{&bridge.SendError{Address: "x@y", Reason: "r", Err: bridge.ErrNoRecipientKey}, 550},
		{&bridge.SendError{Address: "x@y", Reason: "r", Err: bridge.ErrKeyChanged}, 550},
		{&bridge.SendError{Address: "x@y", Reason: "r", Err: bridge.ErrUnknownRecipient}, 550},
		{&bridge.SendError{Address: "x@y", Reason: "r", Err: bridge.ErrNotOwnAddress}, 553},
		{&bridge.SendError{Reason: "r", Err: bridge.ErrBadMessage}, 554},
		{&bridge.SendError{Address: "x@y", Reason: "r", Temporary: true, Err: bridge.ErrSendFailed}, 451},
		{errors.New("internal detail"), 451},
		{context.DeadlineExceeded, 451},
	}
	for _, c := range cases {
		got := s.reply(c.err)
		if subCode(got) != c.code {
			t.Errorf("reply(%v) = %v, want %d", c.err, got, c.code)
		}
		if strings.Contains(got.Error(), "internal detail") {
			t.Errorf("internal text on the wire: %v", got)
		}
	}
}
