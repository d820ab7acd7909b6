package pgp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWKDHash(t *testing.T) {
	// The example of draft-koch-openpgp-webkey-service section 3.1.
	if got := WKDHash("Joe.Doe"); got != "iy9q119eutrkn8s1mk4r39qejnbu3n5q" {
		t.Fatalf("hash %q", got)
	}
	adv, dir, err := WKDURLs("Joe.Doe@Example.ORG")
	if err != nil {
		t.Fatal(err)
	}
	if adv != "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe" ||
		dir != "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe" {
		t.Fatalf("urls %s %s", adv, dir)
	}
	for _, bad := range []string{"nodomain", "@example.org", "a@", "a@ex/ample"} {
		if _, _, err := WKDURLs(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}

// loopbackTLS starts an HTTPS server on 127.0.0.1 with a certificate from
// a fresh test CA for the given names, and a client that trusts that CA
// and dials the server whatever host a URL names.
func loopbackTLS(t *testing.T, h http.Handler, names ...string) *http.Client {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	addr := srv.Listener.Addr().String()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestWKDLookup(t *testing.T) {
	alice, bob := testKey(t, "alice@example.org"), testKey(t, "bob@example.org")
	keys := map[string][]byte{"alice@example.org": alice.PublicBinary(), "bob@example.org": bob.PublicBinary(),
		"huge@example.org": make([]byte, 300<<10), "wrong@example.org": alice.PublicBinary()}
	lookup := func(_ context.Context, a string) ([]byte, error) {
		if k, ok := keys[a]; ok {
			return k, nil
		}
		return nil, errors.New("no key")
	}
	h := WKDHandler(lookup, []string{"example.org"})
	client := loopbackTLS(t, h, "example.org", "openpgpkey.example.org", "direct.example")
	c := &WKDClient{HTTP: client, MaxBytes: 64 << 10, Timeout: 5 * time.Second}
	ctx := context.Background()
	k, err := c.Lookup(ctx, "Alice@example.org")
	if err != nil || k.Fingerprint() != alice.Fingerprint() || k.IsPrivate() {
		t.Fatalf("lookup alice: %v", err)
	}
	if _, err := c.Lookup(ctx, "nobody@example.org"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("nobody: %v", err)
	}
	if _, err := c.Lookup(ctx, "wrong@example.org"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("key without matching User ID accepted: %v", err)
	}
	if _, err := c.Lookup(ctx, "huge@example.org"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge: %v", err)
	}
	// The handler: direct form by Host, policy, wrong hash, other domain.
	for _, tc := range []struct {
		url  string
		code int
	}{
		{"https://example.org/.well-known/openpgpkey/hu/" + WKDHash("bob") + "?l=bob", 200},
		{"https://example.org/.well-known/openpgpkey/policy", 200},
		{"https://openpgpkey.example.org/.well-known/openpgpkey/example.org/policy", 200},
		{"https://example.org/.well-known/openpgpkey/hu/" + WKDHash("bob") + "?l=alice", 404},
		{"https://example.org/.well-known/openpgpkey/hu/" + WKDHash("bob"), 404},
		{"https://direct.example/.well-known/openpgpkey/hu/" + WKDHash("bob") + "?l=bob", 404},
		{"https://example.org/other", 404},
	} {
		resp, err := client.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Fatalf("%s: %d, want %d", tc.url, resp.StatusCode, tc.code)
		}
	}
	// A server that never answers: the timeout bounds the lookup.
	stall := make(chan struct{})
	slow := loopbackTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}), "example.org", "openpgpkey.example.org")
	defer close(stall)
	start := time.Now()
	_, err = (&WKDClient{HTTP: slow, Timeout: 200 * time.Millisecond}).Lookup(ctx, "alice@example.org")
	if err == nil || time.Since(start) > 3*time.Second || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("slow server: %v after %v", err, time.Since(start))
	}
}
