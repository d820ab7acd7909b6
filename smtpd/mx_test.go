package smtpd

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func mxSendGo(t *testing.T, e *mxEnv, from string, to []string, msg string, useTLS bool) error {
	t.Helper()
	var c *smtp.Client
	var err error
	if useTLS {
		c, err = smtp.DialStartTLS(e.addr, &tls.Config{RootCAs: e.certs, ServerName: "mx.example.org"})
	} else {
		c, err = smtp.Dial(e.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.SendMail(from, to, strings.NewReader(msg))
}

func TestMXAcceptsAndSealsByteIdentical(t *testing.T) {
	e := mxStart(t, nil)
	e.res.SetTXT("sender.test", "v=spf1 ip4:127.0.0.0/8 -all")
	msg := mxTestMessage("hello MARKER-SUBJ", "secret MARKER-BODY")
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org", "AL@example.org"}, msg, true); err != nil {
		t.Fatal(err)
	}
	got := e.stored(t)
	if len(got) != 1 {
		t.Fatalf("want 1 message (alias and primary are one account), got %d", len(got))
	}
	ar, rest, ok := strings.Cut(string(got[0]), "\r\n")
	if !ok || rest != msg {
		t.Fatalf("stored message is not AR header + received message:\n%q", got[0])
	}
	if !strings.HasPrefix(ar, "Authentication-Results: mx.example.org; spf=pass") || !strings.Contains(ar, "dkim=none") || !strings.Contains(ar, "dmarc=none") {
		t.Fatalf("bad Authentication-Results: %q", ar)
	}
	if strings.Contains(ar, "127.0.0.1") {
		t.Fatal("client IP in Authentication-Results")
	}
}

func TestMXPlainConnectionAlsoWorks(t *testing.T) {
	e := mxStart(t, nil)
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, mxTestMessage("a", "b"), false); err != nil {
		t.Fatal(err)
	}
	if n := len(e.stored(t)); n != 1 {
		t.Fatalf("stored %d", n)
	}
}

func TestMXRecipientChecks(t *testing.T) {
	e := mxStart(t, nil)
	rc := mxDialRaw(t, e.addr)
	rc.cmd("EHLO client.test", "250")
	rc.cmd("MAIL FROM:<bob@sender.test>", "250")
	cases := []struct{ name, rcpt, code string }{
		{"unknown user", "<nobody@example.org>", "550 5.1.1"},
		{"open relay", "<victim@elsewhere.test>", "550 5.7.1"},
		{"percent hack", "<victim%elsewhere.test@example.org>", "550 5.7.1"},
		{"bang path", "<elsewhere.test!victim@example.org>", "550 5.7.1"},
		{"source route", "<@example.org:victim@elsewhere.test>", "5"},
		{"quoted local part", "<\"victim@elsewhere.test\"@example.org>", "5"},
		{"our domain upper case", "<ALICE@EXAMPLE.ORG>", "250"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc.t = t
			rc.cmd("RCPT TO:"+c.rcpt, c.code)
		})
	}
}

func TestMXOpenRelayRefusedEvenAfterAuthAttempt(t *testing.T) {
	e := mxStart(t, nil)
	rc := mxDialRaw(t, e.addr)
	rc.cmd("EHLO client.test", "250")
	rc.cmd("AUTH PLAIN AGJvYgBwYXNz", "5") // the MX has no AUTH at all
	rc.cmd("MAIL FROM:<bob@sender.test>", "250")
	rc.cmd("RCPT TO:<victim@elsewhere.test>", "550 5.7.1")
}

func TestMXDMARCRejectAtData(t *testing.T) {
	e := mxStart(t, nil)
	e.res.SetTXT("sender.test", "v=spf1 -all")
	e.res.SetTXT("_dmarc.sender.test", "v=DMARC1; p=reject")
	err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, mxTestMessage("x", "y"), false)
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 550 {
		t.Fatalf("want 550 for DMARC reject, got %v", err)
	}
	if n := len(e.stored(t)); n != 0 {
		t.Fatalf("rejected message stored (%d)", n)
	}
	// p=none: accepted, recorded as fail.
	e.res.SetTXT("_dmarc.sender.test", "v=DMARC1; p=none")
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, mxTestMessage("x", "y"), false); err != nil {
		t.Fatal(err)
	}
	got := e.stored(t)
	if len(got) != 1 || !strings.Contains(string(got[0]), "spf=fail") || !strings.Contains(string(got[0]), "dmarc=fail") {
		t.Fatalf("want spf=fail dmarc=fail recorded, got %q", mxFirstLine(got))
	}
}

func mxFirstLine(msgs [][]byte) string {
	if len(msgs) == 0 {
		return ""
	}
	l, _, _ := strings.Cut(string(msgs[0]), "\r\n")
	return l
}

func TestMXNoIPInLogs(t *testing.T) {
	e := mxStart(t, nil)
	_ = mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, mxTestMessage("MARKER-SUBJ", "MARKER-BODY"), false)
	_ = mxSendGo(t, e, "bob@sender.test", []string{"nobody@example.org"}, mxTestMessage("a", "b"), false)
	logs := e.logs.String()
	if !strings.Contains(logs, "message accepted") {
		t.Fatalf("expected an accept log line, got %q", logs)
	}
	for _, bad := range []string{"127.0.0.1", "MARKER-SUBJ", "MARKER-BODY", "bob@sender.test"} {
		if strings.Contains(logs, bad) {
			t.Fatalf("log contains %q: %s", bad, logs)
		}
	}
}
