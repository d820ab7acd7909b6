package channel

import (
	"context"
	"testing"
	"time"
)

// TestConnContext: a server conn's Context ends when the conn is closed
// (here by revocation through CloseDevice) and when the context it was
// served under ends; ConnFromContext finds the conn in a request context.
func TestConnContext(t *testing.T) {
	srvConns := make(chan *Conn, 2)
	hold := make(chan struct{})
	s := startServer(t, ServerConfig{}, func(c *Conn) {
		srvConns <- c
		<-hold
	})
	defer close(hold)
	cfgA, cfgB := s.client(t, "alice"), s.client(t, "bob")
	ca, err := Dial(ctxT(t), s.addr, cfgA)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := Dial(ctxT(t), s.addr, cfgB)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	if ConnFromContext(context.WithValue(context.Background(), connKey{}, ca)) != nil {
		t.Fatal("ConnFromContext returned a client-side conn")
	}
	byKey := map[string]*Conn{}
	for range 2 {
		select {
		case c := <-srvConns:
			byKey[string(c.Peer().DeviceKey)] = c
		case <-time.After(10 * time.Second):
			t.Fatal("server did not accept both conns")
		}
	}
	sa, sb := byKey[string(cfgA.Static.Public)], byKey[string(cfgB.Static.Public)]
	if sa == nil || sb == nil {
		t.Fatal("server conns not found by device key")
	}

	// Served under a parent: the conn's context ends with it.
	parent, cancelParent := context.WithCancel(context.Background())
	reqCtx := ConnContext(parent, sb)
	if ConnFromContext(reqCtx) != sb {
		t.Fatal("ConnFromContext did not find the served conn")
	}
	if sb.Context().Err() != nil {
		t.Fatal("context of an open conn has ended")
	}
	cancelParent()
	waitDone(t, sb.Context(), "conn context after its parent ended")
	if sb.closed.Load() {
		t.Fatal("ending the parent closed the conn")
	}

	// Revocation closes the conn, which ends its context.
	if sa.Context().Err() != nil {
		t.Fatal("context of an open conn has ended")
	}
	if n := s.ln.CloseDevice(cfgA.Static.Public); n != 1 {
		t.Fatalf("CloseDevice closed %d", n)
	}
	waitDone(t, sa.Context(), "conn context after CloseDevice")

	// A context asked for after Close has ended already.
	c2, _ := plainPair(t)
	_ = c2.Close()
	if c2.Context().Err() == nil {
		t.Fatal("context made after Close has not ended")
	}
}

func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not done", what)
	}
}

// TestCloseAll closes every registered conn of every device.
func TestCloseAll(t *testing.T) {
	s := startServer(t, ServerConfig{}, func(c *Conn) { _, _ = c.Read(make([]byte, 1)) })
	var conns []*Conn
	for _, acct := range []string{"alice", "alice", "bob"} {
		c, err := Dial(ctxT(t), s.addr, s.client(t, acct))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitLive(t, s.ln, 3)
	if n := s.ln.CloseAll(); n != 3 {
		t.Fatalf("CloseAll closed %d, want 3", n)
	}
	if s.ln.Live() != 0 {
		t.Fatalf("live = %d after CloseAll", s.ln.Live())
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("conn %d still open after CloseAll: %v", i, err)
		}
	}
	if n := s.ln.CloseAll(); n != 0 {
		t.Fatalf("second CloseAll closed %d", n)
	}
}

// TestListenerSharesTLSConfig: the listener prepares its TLS config once
// instead of cloning it for every accepted connection.
func TestListenerSharesTLSConfig(t *testing.T) {
	ca := newTestCA(t, "srv")
	ln := listenLocal(t, ServerConfig{Static: mustKeys(t), Authorize: newRegistry().authorize, TLS: ca.serverTLS()})
	if ln.tls == nil || ln.tls == ln.cfg.TLS {
		t.Fatal("listener did not prepare its own copy of the TLS config")
	}
	if ln.tls.MinVersion < 0x0304 {
		t.Fatalf("TLS floor %x, want 1.3", ln.tls.MinVersion)
	}
}
