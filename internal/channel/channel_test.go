package channel

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	ca := newTestCA(t, "server")
	s := startServer(t, ServerConfig{TLS: ca.serverTLS()}, echo)
	for _, tc := range []struct {
		name string
		tls  bool
		size int
	}{
		{"small", false, 5},
		{"frame-boundary", false, maxPlain + 1},
		{"1MB-verified-tls", true, 1 << 20},
		{"1MB-default-tls", false, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.client(t, "alice")
			if tc.tls {
				cfg.TLS = ca.clientTLS()
			}
			c, err := Dial(ctxT(t), s.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := make([]byte, tc.size)
			rand.Read(want)
			// Write concurrently with Read: the echo would deadlock a
			// sequential write of 1 MB once socket buffers fill.
			werr := make(chan error, 1)
			go func() { _, err := c.Write(want); werr <- err }()
			got := make([]byte, tc.size)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("echoed bytes differ")
			}
			if err := s.serverErr(t); err != nil {
				t.Fatalf("server handshake: %v", err)
			}
		})
	}
}

func TestServerSeesPeerAndHidesAddr(t *testing.T) {
	got := make(chan Peer, 1)
	addrs := make(chan string, 1)
	s := startServer(t, ServerConfig{}, func(c *Conn) {
		got <- c.Peer()
		addrs <- c.RemoteAddr().String()
		c.Write([]byte("x"))
	})
	cfg := s.client(t, "bob")
	c, err := Dial(ctxT(t), s.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	p := <-got
	if p.Account != "bob" || !bytes.Equal(p.DeviceKey, cfg.Static.Public) {
		t.Fatalf("peer = %+v", p)
	}
	if a := <-addrs; strings.Contains(a, "127.0.0.1") {
		t.Fatalf("server-side RemoteAddr leaks the IP: %q", a)
	}
	if cp := c.Peer(); cp.Account != "" {
		t.Fatalf("client-side Peer should be zero, got %+v", cp)
	}
}

func TestHTTPOverChannel(t *testing.T) {
	reg, key := newRegistry(), mustKeys(t)
	ln := listenLocal(t, ServerConfig{Static: key, Authorize: reg.authorize})
	srv := &http.Server{
		ConnContext: ConnContext,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PeerFromContext(r.Context())
			if !ok {
				http.Error(w, "no peer", http.StatusInternalServerError)
				return
			}
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s|%s|%d|%s", p.Account, r.RemoteAddr, len(body), r.URL.Path)
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dev := mustKeys(t)
	reg.add(dev.Public, "carol")
	cfg := ClientConfig{ServerKey: key.Public, Static: dev}
	hc := &http.Client{Transport: NewHTTPTransport(ln.Addr().String(), cfg), Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	big := bytes.Repeat([]byte("z"), 300_000)
	for i, url := range []string{"http://ignored.invalid/v1/a", "https://also-ignored/v1/b"} {
		resp, err := hc.Post(url, "application/octet-stream", bytes.NewReader(big[:i*150_000+1]))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("carol|device|%d|/v1/%c", i*150_000+1, 'a'+i)
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, b, want)
		}
	}
	// A device the server does not know gets no HTTP response at all.
	bad := ClientConfig{ServerKey: key.Public, Static: mustKeys(t)}
	hc2 := &http.Client{Transport: NewHTTPTransport(ln.Addr().String(), bad), Timeout: 10 * time.Second}
	_, err := hc2.Get("http://x/v1/a")
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("unknown device over HTTP: err = %v, want ErrUnauthorized", err)
	}
}

func TestConcurrentReadWrite(t *testing.T) {
	s := startServer(t, ServerConfig{}, echo)
	c, err := Dial(ctxT(t), s.addr, s.client(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const writers, per = 4, 50
	msg := bytes.Repeat([]byte("m"), 1000)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	total := writers * per * len(msg)
	got, err := io.ReadAll(io.LimitReader(c, int64(total)))
	wg.Wait()
	if err != nil || len(got) != total || bytes.Count(got, []byte("m")) != total {
		t.Fatalf("read %d of %d bytes, err %v", len(got), total, err)
	}
}

// TestReadDeadlineMidFrameResumes: a read deadline firing while a frame is
// half received (net/http does this deliberately) must not lose the stream.
func TestReadDeadlineMidFrameResumes(t *testing.T) {
	a, b := plainPair(t)
	want := bytes.Repeat([]byte("q"), 40_000)
	go func() {
		// Send one frame in two halves, with a pause between them.
		bp, frame, err := sealFrame(a.send, want)
		if err != nil {
			t.Error(err)
			return
		}
		defer framePool.Put(bp)
		a.conn.Write(frame[:1000])
		time.Sleep(300 * time.Millisecond)
		a.conn.Write(frame[1000:])
	}()
	b.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := b.Read(make([]byte, 10))
	if !isTimeout(err) {
		t.Fatalf("want a timeout, got %v", err)
	}
	b.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the timeout: err %v, equal %v", err, bytes.Equal(got, want))
	}
}
