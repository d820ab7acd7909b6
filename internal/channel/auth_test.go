package channel

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestWrongServerKeyFails(t *testing.T) {
	s := startServer(t, ServerConfig{}, echo)
	cfg := s.client(t, "alice")
	cfg.ServerKey = mustKeys(t).Public
	_, err := Dial(ctxT(t), s.addr, cfg)
	if !errors.Is(err, ErrHandshake) || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrHandshake only", err)
	}
	if serr := s.serverErr(t); !errors.Is(serr, ErrHandshake) {
		t.Fatalf("server err = %v", serr)
	}
	if n := len(s.reg.seen()); n != 0 {
		t.Fatalf("Authorize called %d times for an undecryptable message 1", n)
	}
}

func TestUnknownDeviceRefused(t *testing.T) {
	reached := make(chan struct{}, 1)
	s := startServer(t, ServerConfig{}, func(*Conn) { reached <- struct{}{} })
	cfg := ClientConfig{ServerKey: s.key.Public, Static: mustKeys(t)}
	_, err := Dial(ctxT(t), s.addr, cfg)
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrHandshake) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), errUnknownDevice.Error()) {
		t.Fatalf("server's internal reason reached the client: %v", err)
	}
	serr := s.serverErr(t)
	if !errors.Is(serr, ErrUnauthorized) || !errors.Is(serr, errUnknownDevice) {
		t.Fatalf("server err = %v", serr)
	}
	select {
	case <-reached:
		t.Fatal("refused device reached the application")
	default:
	}
	if s.ln.Live() != 0 {
		t.Fatalf("refused conn still registered: %d", s.ln.Live())
	}
}

func TestEnrolmentPayload(t *testing.T) {
	s := startServer(t, ServerConfig{}, func(c *Conn) { c.Write([]byte(c.Peer().Account)) })
	s.reg.token = "enrol-7f3a-one-time"
	dev := mustKeys(t)
	cfg := ClientConfig{ServerKey: s.key.Public, Static: dev, Payload: []byte("enrol-7f3a-one-time")}
	c, err := Dial(ctxT(t), s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	c.Close()
	if string(buf[:n]) != "enrolled" {
		t.Fatalf("account %q", buf[:n])
	}
	if seen := s.reg.seen(); len(seen) != 1 || string(seen[0]) != "enrol-7f3a-one-time" {
		t.Fatalf("payloads seen by Authorize: %q", seen)
	}
	// The key is now registered: it connects without a token...
	cfg.Payload = nil
	c2, err := Dial(ctxT(t), s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	// ...and the token was one-time: another device cannot reuse it.
	other := ClientConfig{ServerKey: s.key.Public, Static: mustKeys(t), Payload: []byte("enrol-7f3a-one-time")}
	if _, err := Dial(ctxT(t), s.addr, other); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("token reuse: err = %v", err)
	}
}

func TestAuthorizePanicRefuses(t *testing.T) {
	s := startServer(t, ServerConfig{Authorize: func(context.Context, []byte, []byte) (Peer, error) {
		panic("boom")
	}}, echo)
	_, err := Dial(ctxT(t), s.addr, ClientConfig{ServerKey: s.key.Public, Static: mustKeys(t)})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	good := mustKeys(t)
	for _, tc := range []struct {
		name string
		cfg  ClientConfig
	}{
		{"no-device-key", ClientConfig{ServerKey: good.Public}},
		{"mismatched-pair", ClientConfig{ServerKey: good.Public, Static: KeyPair{Private: good.Private, Public: mustKeys(t).Public}}},
		{"short-server-key", ClientConfig{ServerKey: good.Public[:31], Static: good}},
		{"zero-server-key", ClientConfig{ServerKey: make([]byte, 32), Static: good}},
		{"huge-payload", ClientConfig{ServerKey: good.Public, Static: good, Payload: make([]byte, MaxPayload+1)}},
		{"bad-proxy", ClientConfig{ServerKey: good.Public, Static: good, Proxy: "http://x:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Dial(ctxT(t), "127.0.0.1:1", tc.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), "channel: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// A server without Authorize refuses instead of panicking.
	srvKey := mustKeys(t)
	ln := listenLocal(t, ServerConfig{Static: srvKey})
	serr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.(*Conn).Handshake(context.Background())
		}
		serr <- err
	}()
	if _, err := Dial(ctxT(t), ln.Addr().String(), ClientConfig{ServerKey: srvKey.Public, Static: good}); !errors.Is(err, ErrHandshake) {
		t.Fatalf("err = %v", err)
	}
	if err := <-serr; !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "Authorize is nil") {
		t.Fatalf("server err = %v", err)
	}
}

func TestFingerprintRoundTrip(t *testing.T) {
	kp := mustKeys(t)
	fp := Fingerprint(kp.Public)
	if len(fp) != 43 || strings.ContainsAny(fp, "+/=") {
		t.Fatalf("fingerprint %q is not unpadded base64url", fp)
	}
	for _, in := range []string{fp, "  " + fp + "\n", strings.NewReplacer("-", "+", "_", "/").Replace(fp) + "="} {
		got, err := ParseFingerprint(in)
		if err != nil || !bytes.Equal(got, kp.Public) {
			t.Fatalf("ParseFingerprint(%q) = %x, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "abc", fp[:42], fp + "A", strings.Repeat("A", 43), fp[:42] + "!"} {
		if _, err := ParseFingerprint(bad); err == nil {
			t.Fatalf("ParseFingerprint(%q) accepted", bad)
		}
	}
	kp2, err := KeyPairFromPrivate(kp.Private)
	if err != nil || !bytes.Equal(kp2.Public, kp.Public) {
		t.Fatalf("KeyPairFromPrivate: %v", err)
	}
	if _, err := KeyPairFromPrivate([]byte{1, 2}); err == nil {
		t.Fatal("short private key accepted")
	}
}
