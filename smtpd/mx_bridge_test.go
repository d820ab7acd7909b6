package smtpd

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"smessenger/bridge"
	"smessenger/internal/dnsres"
	"smessenger/internal/logging"
	"smessenger/internal/server/servertest"
)

// End to end: a real server node and alice's bridge on one bbolt store, the
// MX on the same store. Mail from outside is read back through the bridge
// byte-identical after the Authentication-Results field, and a
// gpg-encrypted PGP/MIME message comes out of the bridge decrypted.
// The bridge and node helpers (subStartBridge, subNoLimits) are the
// submission tests', shared in this package.
func TestMXThroughBridge(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	env := servertest.Start(t, servertest.OpenBolt(t), subNoLimits)
	alice := subStartBridge(t, env, "alice@"+servertest.Domain, bridge.PolicyRefuse)
	m := NewMX(MXConfig{Domains: []string{servertest.Domain}, Hostname: "mx.example.org", Resolver: dnsres.NewStatic()},
		env.Store, logging.New(&mxLogBuffer{}, 0))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve(l)
	t.Cleanup(func() { m.Close() })
	e := &mxEnv{addr: l.Addr().String()}

	plain := "From: Bob <bob@sender.test>\r\nTo: alice@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n" +
		"Message-ID: <b1@sender.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"line one\r\n..leading dot\r\n \r\ntrailing spaces   \r\n"
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, plain, false); err != nil {
		t.Fatal(err)
	}
	got := string(subWaitBody(t, alice.acct, "INBOX", 1))
	ar, rest, _ := strings.Cut(got, "\r\n")
	if !strings.HasPrefix(ar, "Authentication-Results: mx.example.org;") || rest != plain {
		t.Fatalf("bridge reads back a different message:\n%q\nwant AR + %q", got, plain)
	}

	armored := mxGPGEncrypt(t, alice.acct.Key().Public(), []byte("Content-Type: text/plain\r\n\r\nGPG-INNER secret\r\n"))
	enc := "From: Bob <bob@sender.test>\r\nTo: alice@example.org\r\nSubject: ...\r\nMessage-ID: <b2@sender.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"x\"\r\n\r\n" +
		"--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n" +
		"--x\r\nContent-Type: application/octet-stream\r\n\r\n" + string(armored) + "\r\n--x--\r\n"
	if err := mxSendGo(t, e, "bob@sender.test", []string{"alice@example.org"}, enc, false); err != nil {
		t.Fatal(err)
	}
	dec := subWaitBody(t, alice.acct, "INBOX", 2)
	if !bytes.Contains(dec, []byte("GPG-INNER secret")) {
		t.Fatalf("the bridge did not decrypt the PGP/MIME message:\n%.400q", dec)
	}
}
