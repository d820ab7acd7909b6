package channel

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
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a CA plus a leaf for 127.0.0.1/localhost, generated per call.
type testCA struct {
	pool *x509.CertPool
	leaf tls.Certificate
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	ca := &testCA{pool: x509.NewCertPool(), cert: caCert, key: caKey}
	ca.pool.AddCert(caCert)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca.leaf = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	return ca
}

func (ca *testCA) serverTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS13}
}

func (ca *testCA) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}
}

func mustKeys(t testing.TB) KeyPair {
	t.Helper()
	kp, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// registry is an Authorize callback over a fixed set of device keys, plus
// one enrolment token that registers the presenting key.
type registry struct {
	mu       sync.Mutex
	devices  map[string]string // key → account
	token    string
	payloads [][]byte
}

func newRegistry() *registry { return &registry{devices: map[string]string{}} }

func (r *registry) add(key []byte, account string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.devices[string(key)] = account
}

// seen returns the payloads Authorize received so far.
func (r *registry) seen() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.payloads...)
}

var errUnknownDevice = errors.New("test: unknown device")

func (r *registry) authorize(_ context.Context, key, payload []byte) (Peer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.payloads = append(r.payloads, append([]byte(nil), payload...))
	if len(payload) > 0 && r.token != "" && string(payload) == r.token {
		r.token = "" // one-time
		r.devices[string(key)] = "enrolled"
	}
	acct, ok := r.devices[string(key)]
	if !ok {
		return Peer{}, errUnknownDevice
	}
	return Peer{Account: acct, DeviceID: Fingerprint(key)[:8]}, nil
}

// testServer is a Listener on 127.0.0.1:0 running handle for each
// accepted conn in its own goroutine.
type testServer struct {
	ln   *Listener
	addr string
	key  KeyPair
	reg  *registry
	wg   sync.WaitGroup
	errs chan error // handshake results on the server side
}

func startServer(t testing.TB, cfg ServerConfig, handle func(*Conn)) *testServer {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{reg: newRegistry(), errs: make(chan error, 64)}
	if cfg.Static.Private == nil {
		cfg.Static = mustKeys(t)
	}
	if cfg.Authorize == nil {
		cfg.Authorize = s.reg.authorize
	}
	s.key = cfg.Static
	s.ln = NewListener(inner, cfg)
	s.addr = inner.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := s.ln.Accept()
			if err != nil {
				return
			}
			c := nc.(*Conn)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				err := c.Handshake(context.Background())
				if err != nil && strings.Contains(err.Error(), "127.0.0.1") {
					t.Errorf("server-side error carries an IP address: %v", err)
				}
				select {
				case s.errs <- err:
				default:
				}
				if err == nil && handle != nil {
					handle(c)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		s.ln.Close()
		s.wg.Wait()
	})
	return s
}

// client returns a config for a device registered under account.
func (s *testServer) client(t testing.TB, account string) ClientConfig {
	t.Helper()
	kp := mustKeys(t)
	s.reg.add(kp.Public, account)
	return ClientConfig{ServerKey: s.key.Public, Static: kp, HandshakeTimeout: 5 * time.Second}
}

func (s *testServer) serverErr(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server handshake did not finish")
		return nil
	}
}

func echo(c *Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// listenLocal returns a Listener on 127.0.0.1:0, closed at cleanup.
func listenLocal(t testing.TB, cfg ServerConfig) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, cfg)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// plainPair returns a client and a server Conn over real TCP without TLS,
// both past the handshake, so tests can write raw frames under them.
func plainPair(t testing.TB) (client, server *Conn) {
	t.Helper()
	reg, key, dev := newRegistry(), mustKeys(t), mustKeys(t)
	reg.add(dev.Public, "alice")
	ln := listenLocal(t, ServerConfig{Static: key, Authorize: reg.authorize, plaintext: true})
	got := make(chan *Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		c := nc.(*Conn)
		if err := c.Handshake(context.Background()); err != nil {
			t.Error(err)
		}
		got <- c
	}()
	cl, err := Dial(ctxT(t), ln.Addr().String(), ClientConfig{ServerKey: key.Public, Static: dev, plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	sv := <-got
	if sv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { cl.Close(); sv.Close() })
	return cl, sv
}
