package relay

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/internal/dnsres"
	"smessenger/internal/store"
)

// stsCert is a self-signed certificate for names; placed in RootCAs it
// verifies as its own root.
func stsCert(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, pool
}

// stsEnv is a relay delivering to sts.test through MX lookups (no route),
// with DNS, HTTPS policy server and SMTP server all on loopback.
type stsEnv struct {
	*relayEnv
	dns     *dnsres.Static
	mx      *remote
	fetches atomic.Int32
	tlsRuns atomic.Int32 // SMTP sessions that ran over TLS
	logs    *syncBuf
}

// tlsCounting counts the sessions the MX got over TLS.
type tlsCounting struct{ e *stsEnv }

func (b tlsCounting) NewSession(c *smtp.Conn) (smtp.Session, error) {
	if _, ok := c.TLSConnectionState(); ok {
		b.e.tlsRuns.Add(1)
	}
	return b.e.mx.NewSession(c)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setupSTS starts an MX for sts.test (with STARTTLS when starttls) and a
// policy server answering policy (empty: HTTP 404).
func setupSTS(t *testing.T, policy string, starttls bool) *stsEnv {
	base := setupRelay(t)
	cert, pool := stsCert(t, "mx1.sts.test", "other.sts.test", "mta-sts.sts.test")
	env := &stsEnv{relayEnv: base, dns: dnsres.NewStatic(), logs: &syncBuf{}}

	env.mx = &remote{got: map[string][][]byte{}, tempLeft: map[string]int{}, reject: map[string]bool{}}
	s := smtp.NewServer(tlsCounting{env})
	s.Domain = "mx1.sts.test"
	s.ErrorLog = nopLog{}
	if starttls {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.mx.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	_, port, _ := net.SplitHostPort(env.mx.addr)

	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.fetches.Add(1)
		if policy == "" || r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts.sts.test" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, policy)
	}))
	web.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	web.StartTLS()
	t.Cleanup(web.Close)

	env.dns.AddMX("sts.test", "mx1.sts.test", 10)
	env.dns.AddTXT("_mta-sts.sts.test", "v=STSv1; id=p1")
	var d net.Dialer
	loop := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		switch host {
		case "mta-sts.sts.test":
			return d.DialContext(ctx, network, web.Listener.Addr().String())
		case "mx1.sts.test", "other.sts.test":
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		}
		return nil, fmt.Errorf("test dialer: unknown host %s", host)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: loop, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base.r = New(Config{
		Hostname: "mx.example.org", Resolver: env.dns, Dial: loop, Port: port,
		TLS: &tls.Config{RootCAs: pool}, STSClient: client, STSTimeout: 5 * time.Second,
		Backoff: Backoff{Base: time.Minute, Max: time.Hour}, Now: base.clock,
	}, base.st, slog.New(slog.NewTextHandler(env.logs, nil)))
	return env
}

func (e *stsEnv) send(t *testing.T) []store.QueueEntry {
	t.Helper()
	e.enqueue(t, "x@sts.test")
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	q, err := e.st.ListQueue(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

const stsEnforce = "version: STSv1\nmode: enforce\nmx: mx1.sts.test\nmx: *.backup.sts.test\nmax_age: 86400\n"

func TestSTSEnforceDeliversOverVerifiedTLS(t *testing.T) {
	e := setupSTS(t, stsEnforce, true)
	if q := e.send(t); len(q) != 0 {
		t.Fatalf("not delivered: %+v", q)
	}
	if e.mx.count("x@sts.test") != 1 || e.tlsRuns.Load() != 1 {
		t.Fatalf("MX got %d messages over %d TLS sessions", e.mx.count("x@sts.test"), e.tlsRuns.Load())
	}
	if e.r.sts.Cached() != 1 || e.fetches.Load() != 1 {
		t.Fatalf("cache %d, fetches %d", e.r.sts.Cached(), e.fetches.Load())
	}
	// Same id in DNS: the cached policy serves the next delivery.
	e.send(t)
	if e.fetches.Load() != 1 || e.mx.count("x@sts.test") != 2 {
		t.Fatalf("second delivery: fetches %d, got %d", e.fetches.Load(), e.mx.count("x@sts.test"))
	}
}

func TestSTSEnforceRefusesPlaintext(t *testing.T) {
	e := setupSTS(t, stsEnforce, false)
	q := e.send(t)
	if e.mx.count("x@sts.test") != 0 {
		t.Fatal("delivered in plaintext under an enforce policy")
	}
	if len(q) != 1 || q[0].Attempts != 1 || q[0].Recipients[0].Done || !q[0].NextAttempt.After(e.clock()) {
		t.Fatalf("want a rescheduled entry, got %+v", q)
	}
	if !strings.Contains(q[0].Recipients[0].LastError, "TLS required") {
		t.Fatalf("last error %q", q[0].Recipients[0].LastError)
	}
}

func TestSTSEnforceRefusesUnlistedMX(t *testing.T) {
	e := setupSTS(t, strings.Replace(stsEnforce, "mx: mx1.sts.test\n", "", 1), true)
	q := e.send(t)
	if e.mx.count("x@sts.test") != 0 {
		t.Fatal("delivered to an MX outside the policy")
	}
	if len(q) != 1 || q[0].Recipients[0].Done || q[0].Recipients[0].LastError != ErrSTSNoMatchingMX.Error() {
		t.Fatalf("want a deferred entry, got %+v", q)
	}
	// A cached policy outlives a DNS failure: still not delivered.
	e.dns.SetFail("_mta-sts.sts.test", true)
	e.advance(2 * time.Hour)
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	if e.mx.count("x@sts.test") != 0 {
		t.Fatal("policy stripped by a DNS failure")
	}
}

func TestSTSTestingDeliversPlaintext(t *testing.T) {
	e := setupSTS(t, strings.Replace(stsEnforce, "enforce", "testing", 1), false)
	if q := e.send(t); len(q) != 0 || e.mx.count("x@sts.test") != 1 || e.tlsRuns.Load() != 0 {
		t.Fatalf("testing mode did not deliver in plaintext: %+v", q)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "MTA-STS testing-mode violation") || !strings.Contains(logs, "no STARTTLS") {
		t.Fatalf("violation not logged:\n%s", logs)
	}
	if strings.Contains(logs, "127.0.0.1") {
		t.Fatalf("IP address in logs:\n%s", logs)
	}
}

func TestSTSFetchFailureDeliversAsBefore(t *testing.T) {
	e := setupSTS(t, "", false) // policy server answers 404
	if q := e.send(t); len(q) != 0 || e.mx.count("x@sts.test") != 1 {
		t.Fatalf("fetch failure blocked delivery: %+v", q)
	}
	if e.fetches.Load() != 1 || e.r.sts.Cached() != 0 {
		t.Fatalf("fetches %d, cached %d", e.fetches.Load(), e.r.sts.Cached())
	}
}
