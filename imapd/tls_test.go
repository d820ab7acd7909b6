package imapd

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

func localTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath, err := GenerateLocalCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := os.ReadFile(certPath)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("certificate not PEM")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, pool
}

func TestGenerateLocalCertReused(t *testing.T) {
	dir := t.TempDir()
	c1, k1, err := GenerateLocalCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(c1)
	c2, k2, err := GenerateLocalCert(dir)
	if err != nil || c1 != c2 || k1 != k2 {
		t.Fatalf("second call: %v %s %s", err, c2, k2)
	}
	after, _ := os.ReadFile(c2)
	if string(before) != string(after) {
		t.Error("certificate regenerated instead of reused")
	}
	if fi, _ := os.Stat(k1); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	// A damaged pair is an error, not silently replaced.
	os.WriteFile(c1, []byte("garbage"), 0o644)
	if _, _, err := GenerateLocalCert(dir); err == nil {
		t.Error("damaged certificate accepted")
	}
}

// TestStartTLSAndIMAPS verifies the local certificate for every loopback
// name, as mbsync does, over STARTTLS and over IMAPS.
func TestStartTLSAndIMAPS(t *testing.T) {
	cfg, pool := localTLS(t)
	env := newTestEnv(t, cfg)
	for _, name := range []string{"127.0.0.1", "localhost"} {
		c, err := imapclient.DialStartTLS(env.addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: name}})
		if err != nil {
			t.Fatalf("STARTTLS as %s: %v", name, err)
		}
		if err := c.Login(testUser, testPass).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.srv.ServeTLS(l)
	c, err := imapclient.DialTLS(l.Addr().String(), &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "::1"}})
	if err != nil {
		t.Fatalf("IMAPS: %v", err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if ServeTLSWithout := New(Config{}).ServeTLS(l); ServeTLSWithout != ErrNoTLS {
		t.Errorf("ServeTLS without TLS: %v", ServeTLSWithout)
	}
}

// TestBadInputRaw sends malformed commands on a raw connection: each gets
// a tagged BAD or NO, the connection survives, and nothing changes.
func TestBadInputRaw(t *testing.T) {
	env := newTestEnv(t, nil)
	env.view.deliver("INBOX", simpleMsg)
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	r.ReadString('\n') // greeting
	send := func(line string) string {
		t.Helper()
		if _, err := conn.Write([]byte(line + "\r\n")); err != nil {
			t.Fatal(err)
		}
		tag := strings.Fields(line)[0]
		for {
			resp, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: connection lost: %v", line, err)
			}
			if strings.HasPrefix(resp, tag+" ") {
				return resp
			}
		}
	}
	if resp := send(`a1 LOGIN "` + testUser + `" "` + testPass + `"`); !strings.Contains(resp, "OK") {
		t.Fatal(resp)
	}
	if resp := send("a2 SELECT INBOX"); !strings.Contains(resp, "OK") {
		t.Fatal(resp)
	}
	for _, line := range []string{
		"b1 FETCH 0:x (FLAGS)",
		"b2 FETCH 1 (BODY.PEEK[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32.33])",
		"b3 UID STORE 1 +FLAGS (\\Deleted",
		"b4 SEARCH HEADER",
		"b5 SEARCH $",
		"b6 UID FETCH 4294967295 (BODY.PEEK[]<4294967295.1>)",
		"b7 STORE 99 FLAGS (\\Seen)",
		"b8 ID (\"name\" \"imaplib\")",
		"b9 SEARCH OR OR OR SEEN",
	} {
		resp := send(line)
		if !strings.Contains(resp, " OK") && !strings.Contains(resp, " BAD") && !strings.Contains(resp, " NO") {
			t.Errorf("%q: %q", line, resp)
		}
	}
	msgs, _ := env.view.Messages(t.Context(), "INBOX")
	if len(msgs) != 1 || len(msgs[0].Flags) != 0 {
		t.Errorf("bad input changed the mailbox: %+v", msgs)
	}
	if resp := send("z1 NOOP"); !strings.Contains(resp, "OK") {
		t.Errorf("connection unusable after bad input: %q", resp)
	}
}
