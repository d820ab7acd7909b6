package channel

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"sync"
	"testing"
)

// interceptor is a TLS-terminating middlebox whose CA the client trusts: it
// decrypts TLS, records every byte it forwards, and re-encrypts towards the
// real server — what a corporate proxy or an attacker with a rogue CA does.
type interceptor struct {
	addr string
	mu   sync.Mutex
	seen bytes.Buffer
}

func (ic *interceptor) record(p []byte) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	ic.seen.Write(p)
}

func (ic *interceptor) captured() []byte {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return bytes.Clone(ic.seen.Bytes())
}

// recorder copies src to dst through the interceptor's log.
type recorder struct {
	ic *interceptor
	w  io.Writer
}

func (r recorder) Write(p []byte) (int, error) {
	r.ic.record(p)
	return r.w.Write(p)
}

func startInterceptor(t *testing.T, ca *testCA, upstream string) *interceptor {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.serverTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ic := &interceptor{addr: ln.Addr().String()}
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer down.Close()
				up, err := tls.Dial("tcp", upstream, &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(recorder{ic, up}, down); up.Close() }()
				io.Copy(recorder{ic, down}, up)
			}()
		}
	}()
	return ic
}

func TestTLSInterceptorSeesOnlyCiphertext(t *testing.T) {
	s := startServer(t, ServerConfig{TLS: newTestCA(t, "real").serverTLS()}, echo)
	evilCA := newTestCA(t, "interceptor")
	ic := startInterceptor(t, evilCA, s.addr)
	s.reg.token = "ENROLMENT-TOKEN-5551"
	dev := mustKeys(t)
	cfg := ClientConfig{
		ServerKey: s.key.Public, Static: dev, Payload: []byte("ENROLMENT-TOKEN-5551"),
		TLS: evilCA.clientTLS(), // the client trusts the interceptor's certificate
	}
	c, err := Dial(ctxT(t), ic.addr, cfg)
	if err != nil {
		t.Fatalf("a passive TLS forwarder must not break the channel: %v", err)
	}
	marker := []byte("PLAINTEXT-MARKER-4242-do-not-leak")
	if _, err := c.Write(marker); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(marker))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, marker) {
		t.Fatalf("echo through interceptor: %q, %v", got, err)
	}
	c.Close()
	seen := ic.captured()
	// handshake (96+20 and 49 bytes) plus two frames of len(marker)+16
	if len(seen) < 96+49+2*(len(marker)+16) {
		t.Fatalf("interceptor captured only %d bytes; the test is not observing the session", len(seen))
	}
	for name, secret := range map[string][]byte{
		"marker": marker, "enrolment token": []byte("ENROLMENT-TOKEN-5551"), "device key": dev.Public,
	} {
		if bytes.Contains(seen, secret) {
			t.Errorf("interceptor saw the %s in clear", name)
		}
	}
}

func TestTLSInterceptorCannotImpersonateServer(t *testing.T) {
	real := mustKeys(t)
	evilCA := newTestCA(t, "interceptor")
	called := make(chan []byte, 1)
	evil := startServer(t, ServerConfig{
		TLS: evilCA.serverTLS(),
		Authorize: func(_ context.Context, key, payload []byte) (Peer, error) {
			called <- payload
			return Peer{Account: "victim"}, nil
		},
	}, echo)
	cfg := ClientConfig{ServerKey: real.Public, Static: mustKeys(t), TLS: evilCA.clientTLS(), Payload: []byte("tok")}
	c, err := Dial(ctxT(t), evil.addr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("handshake with an impostor holding its own Noise key succeeded")
	}
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("err = %v", err)
	}
	if serr := evil.serverErr(t); serr == nil {
		t.Fatal("impostor's side of the handshake succeeded")
	}
	select {
	case p := <-called:
		t.Fatalf("impostor read message 1's payload %q", p)
	default:
	}
}

// TestUntrustedCertificateRejected: with RootCAs set, TLS verification is on.
func TestUntrustedCertificateRejected(t *testing.T) {
	s := startServer(t, ServerConfig{TLS: newTestCA(t, "real").serverTLS()}, echo)
	cfg := s.client(t, "alice")
	cfg.TLS = newTestCA(t, "other").clientTLS()
	_, err := Dial(ctxT(t), s.addr, cfg)
	var uerr x509.UnknownAuthorityError
	if !errors.Is(err, ErrHandshake) || !errors.As(err, &uerr) {
		t.Fatalf("err = %v", err)
	}
}
