package smtpd

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// mxStartData opens a session up to the 354 of DATA.
func mxStartData(t *testing.T, addr string) *mxRawConn {
	rc := mxDialRaw(t, addr)
	rc.cmd("EHLO client.test", "250")
	rc.cmd("MAIL FROM:<bob@sender.test>", "250")
	rc.cmd("RCPT TO:<alice@example.org>", "250")
	rc.cmd("DATA", "354")
	return rc
}

// mxStillServing proves the MX accepts a normal message after an attack.
func mxStillServing(t *testing.T, e *mxEnv) {
	t.Helper()
	before := len(e.stored(t))
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, mxTestMessage("ok", "ok"), false); err != nil {
		t.Fatalf("MX not serving after attack: %v", err)
	}
	if len(e.stored(t)) != before+1 {
		t.Fatal("follow-up message not stored")
	}
}

var mxSmugglingVectors = []struct{ name, data string }{
	{"LF.LF", "Subject: a\r\n\r\nbody\n.\nMAIL FROM:<evil@x>\r\n"},
	{"CR.CR", "Subject: a\r\n\r\nbody\r.\rMAIL FROM:<evil@x>\r\n"},
	{"LF.CRLF", "Subject: a\r\n\r\nbody\n.\r\nMAIL FROM:<evil@x>\r\n"},
	{"CRCRLF", "Subject: a\r\n\r\nbody\r\r\n.\r\r\nMAIL FROM:<evil@x>\r\n"},
}

// Before STARTTLS our connection wrapper sees every byte and hangs up on
// the first bare CR or LF, as Postfix's smtpd_forbid_bare_newline does.
func TestMXSmugglingPlaintext(t *testing.T) {
	e := mxStart(t, nil)
	for _, v := range mxSmugglingVectors {
		t.Run(v.name, func(t *testing.T) {
			rc := mxStartData(t, e.addr)
			rc.send(v.data + "\r\n.\r\n")
			l := rc.reply()
			if !strings.HasPrefix(l, "521 5.5.2") {
				t.Fatalf("want 521 5.5.2, got %q", l)
			}
			if l := rc.reply(); !strings.HasPrefix(l, "EOF") {
				t.Fatalf("connection not closed: %q", l)
			}
		})
	}
	if n := len(e.stored(t)); n != 0 {
		t.Fatalf("%d smuggled messages stored", n)
	}
	mxStillServing(t, e)
}

// After STARTTLS the session checks DATA itself and refuses the message.
func TestMXSmugglingAfterSTARTTLS(t *testing.T) {
	e := mxStart(t, nil)
	for _, v := range mxSmugglingVectors {
		t.Run(v.name, func(t *testing.T) {
			rc := mxDialRaw(t, e.addr)
			rc.cmd("EHLO client.test", "250")
			rc.cmd("STARTTLS", "220")
			tc := tls.Client(rc.c, &tls.Config{RootCAs: e.certs, ServerName: "mx.example.org"})
			rc.c, rc.r = tc, bufio.NewReader(tc)
			rc.cmd("EHLO client.test", "250")
			rc.cmd("MAIL FROM:<bob@sender.test>", "250")
			rc.cmd("RCPT TO:<alice@example.org>", "250")
			rc.cmd("DATA", "354")
			rc.send(v.data + "\r\n.\r\n")
			rc.expect("550 5.6.0")
			// What followed the fake end of data was message content, not
			// commands: no MAIL FROM:<evil@x> reply was ever produced.
			rc.cmd("NOOP", "250")
		})
	}
	if n := len(e.stored(t)); n != 0 {
		t.Fatalf("%d smuggled messages stored", n)
	}
	mxStillServing(t, e)
}

func TestMXBareLFInCommandRefused(t *testing.T) {
	e := mxStart(t, nil)
	rc := mxDialRaw(t, e.addr)
	rc.send("EHLO client.test\nMAIL FROM:<a@b>\r\n")
	if l := rc.reply(); !strings.HasPrefix(l, "521") {
		t.Fatalf("want 521, got %q", l)
	}
	mxStillServing(t, e)
}

// Commands pipelined behind STARTTLS (CVE-2011-0411 class) must be
// dropped, not run inside the TLS session.
func TestMXSTARTTLSInjectionDiscarded(t *testing.T) {
	e := mxStart(t, nil)
	rc := mxDialRaw(t, e.addr)
	rc.cmd("EHLO client.test", "250")
	rc.send("STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\n")
	rc.expect("220")
	tc := tls.Client(rc.c, &tls.Config{RootCAs: e.certs, ServerName: "mx.example.org"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	rc.c, rc.r = tc, bufio.NewReader(tc)
	rc.cmd("EHLO client.test", "250")
	// Had the injected MAIL FROM run, this RCPT would be accepted.
	rc.cmd("RCPT TO:<alice@example.org>", "502")
	mxStillServing(t, e)
}

func TestMXEndlessLine(t *testing.T) {
	e := mxStart(t, nil)
	rc := mxDialRaw(t, e.addr)
	rc.send(strings.Repeat("A", 100000))
	if l := rc.reply(); !strings.HasPrefix(l, "500") {
		t.Fatalf("want 500, got %q", l)
	}
	// Inside DATA too.
	rc = mxStartData(t, e.addr)
	rc.send("Subject: x\r\n\r\n" + strings.Repeat("B", 100000) + "\r\n.\r\n")
	if l := rc.reply(); !strings.HasPrefix(l, "500") {
		t.Fatalf("want 500 in DATA, got %q", l)
	}
	mxStillServing(t, e)
}

func TestMXStructureLimits(t *testing.T) {
	e := mxStart(t, func(c *MXConfig) { c.MaxMessageBytes = 8 << 20 })
	var parts strings.Builder
	parts.WriteString("Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for i := 0; i < 100000; i++ {
		parts.WriteString("--b\r\n\r\nx\r\n")
	}
	parts.WriteString("--b--\r\n")
	var nest strings.Builder
	nest.WriteString("Subject: deep\r\nMIME-Version: 1.0\r\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&nest, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	nest.WriteString("\r\nx\r\n")
	hugeHeader := "Subject: big\r\nX-Big: " + strings.Repeat("h", 900) + "\r\n"
	hugeHeader = strings.Repeat(hugeHeader, 1200) + "\r\nbody\r\n" // about 1 MB of header
	oversize := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 9000)
	cases := []struct{ name, data, code string }{
		{"100000 MIME parts", parts.String(), "554 5.6.0"},
		{"1000 nesting levels", nest.String(), "554 5.6.0"},
		{"1 MB header", hugeHeader, "552 5.3.4"},
		{"oversize DATA", oversize, "552 5.3.4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := mxStartData(t, e.addr)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rc.send(c.data + ".\r\n")
			rc.expect(c.code)
			runtime.ReadMemStats(&after)
			// Memory stays bounded by the message size, not by its part
			// count or depth: the buffer doubles up to the 8 MB limit.
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
				t.Errorf("refusing it allocated %d MB", d>>20)
			}
			rc.cmd("NOOP", "250") // the session survives
		})
	}
	if n := len(e.stored(t)); n != 0 {
		t.Fatalf("%d oversize messages stored", n)
	}
	mxStillServing(t, e)
}

func TestMXRecipientLimit(t *testing.T) {
	e := mxStart(t, func(c *MXConfig) { c.MaxRecipients = 2 })
	rc := mxDialRaw(t, e.addr)
	rc.cmd("EHLO client.test", "250")
	rc.cmd("MAIL FROM:<bob@sender.test>", "250")
	rc.cmd("RCPT TO:<alice@example.org>", "250")
	rc.cmd("RCPT TO:<al@example.org>", "250")
	rc.cmd("RCPT TO:<alice@example.org>", "452")
}

func TestMXConnectionsPerSource(t *testing.T) {
	e := mxStart(t, func(c *MXConfig) { c.ConnsPerSource = 2 })
	a := mxDialRaw(t, e.addr)
	b := mxDialRaw(t, e.addr)
	c, err := mxDialNoGreet(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "421 4.7.0") {
		t.Fatalf("third connection: want 421, got %q", line)
	}
	a.cmd("QUIT", "221")
	b.cmd("QUIT", "221")
}

func TestMXCommandRate(t *testing.T) {
	e := mxStart(t, func(c *MXConfig) { c.CommandsPerMinute = 5 })
	rc := mxDialRaw(t, e.addr)
	rc.cmd("EHLO client.test", "250") // 1
	got421 := false
	for i := 0; i < 10 && !got421; i++ {
		rc.send("MAIL FROM:<bob@sender.test>\r\n")
		got421 = strings.HasPrefix(rc.reply(), "421")
		rc.cmd("RSET", "250")
	}
	if !got421 {
		t.Fatal("command rate limit never hit")
	}
}
