package channel

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestCloseDevice(t *testing.T) {
	ended := make(chan error, 4)
	s := startServer(t, ServerConfig{}, func(c *Conn) {
		_, err := io.Copy(io.Discard, c)
		ended <- err
	})
	revoked := s.client(t, "alice")
	kept := s.client(t, "alice")
	c1, err := Dial(ctxT(t), s.addr, revoked)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := Dial(ctxT(t), s.addr, kept)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	waitLive(t, s.ln, 2)
	if n := s.ln.CloseDevice(revoked.Static.Public); n != 1 {
		t.Fatalf("CloseDevice closed %d conns, want 1", n)
	}
	c1.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("revoked device's read: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("server-side reader of the revoked device did not end")
	}
	// The other device still works.
	if _, err := c2.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	if s.ln.Live() != 1 {
		t.Fatalf("live = %d, want 1", s.ln.Live())
	}
	if n := s.ln.CloseDevice(revoked.Static.Public); n != 0 {
		t.Fatalf("second CloseDevice closed %d", n)
	}
}

func waitLive(t *testing.T, ln *Listener, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ln.Live() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("live conns = %d, want %d", ln.Live(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHandshakeTimeoutSilentClient: a client that connects and says nothing
// loses its slot after HandshakeTimeout, and does not hold up Accept.
func TestHandshakeTimeoutSilentClient(t *testing.T) {
	s := startServer(t, ServerConfig{HandshakeTimeout: 300 * time.Millisecond}, echo)
	silent, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Meanwhile a real client is served at once.
	c, err := Dial(ctxT(t), s.addr, s.client(t, "alice"))
	if err != nil {
		t.Fatalf("a silent client blocked another: %v", err)
	}
	c.Close()
	var sawTimeout bool
	for range 2 {
		err := s.serverErr(t)
		if err != nil {
			if !errors.Is(err, ErrHandshake) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("server err = %v", err)
			}
			sawTimeout = true
		}
	}
	if !sawTimeout {
		t.Fatal("silent client's handshake did not time out")
	}
	// The server closed the silent conn.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("silent conn still open: %v", err)
	}
}

// TestHandshakeTimeoutSilentServer: the client side is bounded the same way,
// and by its context.
func TestHandshakeTimeoutSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and say nothing
		}
	}()
	cfg := ClientConfig{ServerKey: mustKeys(t).Public, Static: mustKeys(t), HandshakeTimeout: 200 * time.Millisecond}
	start := time.Now()
	_, err = Dial(context.Background(), ln.Addr().String(), cfg)
	if !errors.Is(err, ErrHandshake) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("handshake timeout not honoured: %v", time.Since(start))
	}
	cfg.HandshakeTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := Dial(ctx, ln.Addr().String(), cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

// TestLazyHandshakeOnRead: without an explicit Handshake, the first Read or
// Write runs it, on both sides.
func TestLazyHandshakeOnRead(t *testing.T) {
	key, dev := mustKeys(t), mustKeys(t)
	reg := newRegistry()
	reg.add(dev.Public, "lazy")
	ln := listenLocal(t, ServerConfig{Static: key, Authorize: reg.authorize})
	done := make(chan string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err.Error()
			return
		}
		defer nc.Close()
		buf := make([]byte, 5)
		io.ReadFull(nc, buf)
		done <- nc.(*Conn).Peer().Account + ":" + string(buf)
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := Client(raw, ClientConfig{ServerKey: key.Public, Static: dev})
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "lazy:hello" {
		t.Fatalf("got %q", got)
	}
}

// TestCloseDeviceDuringHandshake: a device revoked while Authorize is
// running is cut off too, because the conn is registered before Authorize.
func TestCloseDeviceDuringHandshake(t *testing.T) {
	inAuth, release := make(chan []byte, 1), make(chan struct{})
	s := startServer(t, ServerConfig{Authorize: func(_ context.Context, key, _ []byte) (Peer, error) {
		inAuth <- key
		<-release
		return Peer{Account: "stale-answer"}, nil
	}}, echo)
	cfg := ClientConfig{ServerKey: s.key.Public, Static: mustKeys(t), HandshakeTimeout: 5 * time.Second}
	dialErr := make(chan error, 1)
	go func() {
		c, err := Dial(context.Background(), s.addr, cfg)
		if err == nil {
			c.Close()
		}
		dialErr <- err
	}()
	key := <-inAuth
	if n := s.ln.CloseDevice(key); n != 1 {
		t.Fatalf("CloseDevice during handshake closed %d", n)
	}
	close(release)
	if err := <-dialErr; !errors.Is(err, ErrHandshake) {
		t.Fatalf("revoked device completed its handshake: %v", err)
	}
	if err := s.serverErr(t); err == nil {
		t.Fatal("server-side handshake succeeded on a closed conn")
	}
}
