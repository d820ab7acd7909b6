package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smessenger/internal/dnsres"
	"smessenger/internal/logging"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/pgp"
)

// mxEnv is a running MX on 127.0.0.1 with one local user.
type mxEnv struct {
	mx    *MX
	addr  string
	st    store.Store
	acct  store.AccountID
	key   *pgp.Key // alice's private key
	res   *dnsres.Static
	logs  *mxLogBuffer
	certs *x509.CertPool
}

type mxLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *mxLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *mxLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	mxTestKeyOnce sync.Once
	mxTestKey     *pgp.Key
)

// mxAliceKey is generated once per test binary: key generation is slow.
func mxAliceKey(t testing.TB) *pgp.Key {
	mxTestKeyOnce.Do(func() {
		k, err := pgp.GenerateKey("Alice", "alice@example.org")
		if err != nil {
			t.Fatal(err)
		}
		mxTestKey = k
	})
	return mxTestKey
}

// mxTestStore opens a real bbolt store in the test's temp dir.
func mxTestStore(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mxStart(t testing.TB, mod func(*MXConfig)) *mxEnv {
	t.Helper()
	return mxStartOn(t, mxTestStore(t), mod)
}

// mxStartOn runs an MX over st, in which it creates alice (alias al@).
func mxStartOn(t testing.TB, st store.Store, mod func(*MXConfig)) *mxEnv {
	t.Helper()
	ctx := context.Background()
	a, err := st.CreateAccount(ctx, "alice@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddAlias(ctx, a.ID, "al@example.org"); err != nil {
		t.Fatal(err)
	}
	k := mxAliceKey(t)
	if err := st.SetPublicKey(ctx, a.ID, k.PublicBinary()); err != nil {
		t.Fatal(err)
	}
	cert, pool := mxSelfSigned(t)
	res := dnsres.NewStatic()
	logs := &mxLogBuffer{}
	cfg := MXConfig{
		Domains: []string{"example.org"}, Hostname: "mx.example.org",
		TLS:      &tls.Config{Certificates: []tls.Certificate{cert}},
		Resolver: res, MaxMessageBytes: 1 << 20, MaxHeaderBytes: 64 << 10,
		MaxParts: 100, MaxDepth: 10, ConnsPerSource: 50,
	}
	if mod != nil {
		mod(&cfg)
	}
	m := NewMX(cfg, st, logging.New(logs, -4))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve(l)
	t.Cleanup(func() { m.Close() })
	return &mxEnv{mx: m, addr: l.Addr().String(), st: st, acct: a.ID, key: k, res: res, logs: logs, certs: pool}
}

func mxSelfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.org"},
		DNSNames: []string{"mx.example.org", "localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: c}, pool
}

// stored returns alice's INBOX messages, decrypted.
func (e *mxEnv) stored(t testing.TB) [][]byte {
	t.Helper()
	ctx := context.Background()
	metas, err := e.st.ListMessages(ctx, e.acct, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range metas {
		bb, err := e.st.BodyBlob(ctx, e.acct, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		op, err := pgp.Open(bb, e.key, pgp.OpenOptions{})
		if err != nil {
			t.Fatalf("stored body does not decrypt: %v", err)
		}
		out = append(out, op.Plaintext)
	}
	return out
}

// mxRawConn is a line-level SMTP client for abuse tests.
type mxRawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func mxDialRaw(t testing.TB, addr string) *mxRawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &mxRawConn{t: t, c: c, r: bufio.NewReader(c)}
	rc.expect("220")
	return rc
}

func (rc *mxRawConn) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (rc *mxRawConn) reply() string {
	rc.t.Helper()
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			return "EOF:" + line
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (rc *mxRawConn) expect(code string) string {
	rc.t.Helper()
	l := rc.reply()
	if !strings.HasPrefix(l, code) {
		rc.t.Fatalf("want %s, got %q", code, l)
	}
	return l
}

func (rc *mxRawConn) cmd(line, code string) string {
	rc.t.Helper()
	rc.send(line + "\r\n")
	return rc.expect(code)
}

func mxTestMessage(subject, body string) string {
	return "From: Bob <bob@sender.test>\r\nTo: alice@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <1@sender.test>\r\n\r\n" + body + "\r\n"
}

func mxDialNoGreet(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	return c, err
}
