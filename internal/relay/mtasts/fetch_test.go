package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"smessenger/internal/dnsres"
)

// policyServer serves body (with status and content type) for every
// mta-sts.<domain> through a client that dials it on loopback.
type policyServer struct {
	mu     sync.Mutex
	status int
	ctype  string
	body   string
	hits   int
}

func (p *policyServer) set(status int, ctype, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.ctype, p.body = status, ctype, body
}

func newFetcher(t *testing.T, dns *dnsres.Static, now func() time.Time) (*Fetcher, *policyServer) {
	ps := &policyServer{status: 200, ctype: "text/plain; charset=utf-8"}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		ps.hits++
		if ps.status == http.StatusFound {
			http.Redirect(w, r, "https://elsewhere.test/", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", ps.ctype)
		w.WriteHeader(ps.status)
		_, _ = w.Write([]byte(ps.body))
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	// httptest's certificate names example.com; the test checks our
	// fetching, not the name check, which the relay tests cover.
	tr.TLSClientConfig.ServerName = "example.com"
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	f := NewFetcher(Config{Resolver: dns, Client: &http.Client{Transport: tr}, Timeout: 5 * time.Second, MaxEntries: 2, Now: now})
	return f, ps
}

const enforce = "version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 3600\n"

func TestFetcherCacheByIDAndMaxAge(t *testing.T) {
	dns := dnsres.NewStatic()
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f, ps := newFetcher(t, dns, clock)
	ctx := context.Background()
	ps.set(200, "text/plain", enforce)
	if _, err := f.Lookup(ctx, "a.test"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("no TXT: want ErrNoRecord, got %v", err)
	}
	dns.SetTXT("_mta-sts.a.test", "v=STSv1; id=one")
	p, err := f.Lookup(ctx, "A.test.")
	if err != nil || p.Mode != ModeEnforce || ps.hits != 1 {
		t.Fatalf("first lookup: %+v %v hits=%d", p, err, ps.hits)
	}
	// Unchanged id: cached. Server now broken: still the cached policy.
	ps.set(500, "text/plain", "")
	if p, err = f.Lookup(ctx, "a.test"); err != nil || p.Mode != ModeEnforce || ps.hits != 1 {
		t.Fatalf("cached lookup: %v hits=%d", err, ps.hits)
	}
	// New id, fetch fails: the cached policy stays in force.
	dns.SetTXT("_mta-sts.a.test", "v=STSv1; id=two")
	if p, err = f.Lookup(ctx, "a.test"); err != nil || p.Mode != ModeEnforce || ps.hits != 2 {
		t.Fatalf("refetch failure: %v hits=%d", err, ps.hits)
	}
	// New id, fetch works: replaced.
	ps.set(200, "text/plain", strings.Replace(enforce, "enforce", "testing", 1))
	if p, err = f.Lookup(ctx, "a.test"); err != nil || p.Mode != ModeTesting {
		t.Fatalf("refetch: %+v %v", p, err)
	}
	// Expired and the server gone: no policy.
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	ps.set(404, "text/plain", "")
	if _, err = f.Lookup(ctx, "a.test"); !errors.Is(err, ErrFetch) {
		t.Fatalf("expired: want ErrFetch, got %v", err)
	}
}

func TestFetcherRejects(t *testing.T) {
	dns := dnsres.NewStatic()
	f, ps := newFetcher(t, dns, nil)
	dns.SetTXT("_mta-sts.b.test", "v=STSv1; id=1")
	for _, tc := range []struct {
		name          string
		status        int
		ctype, body   string
		want          error
		inTextContain string
	}{
		{"redirect", http.StatusFound, "text/plain", "", ErrFetch, "302"},
		{"html", 200, "text/html", enforce, ErrFetch, "text/plain"},
		{"too large", 200, "text/plain", enforce + strings.Repeat("x: y\n", MaxBodySize/5+1), ErrFetch, "larger"},
		{"garbage", 200, "text/plain", "hello", ErrInvalidPolicy, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps.set(tc.status, tc.ctype, tc.body)
			p, err := f.Lookup(context.Background(), "b.test")
			if !errors.Is(err, tc.want) || p != nil || !strings.Contains(err.Error(), tc.inTextContain) {
				t.Fatalf("got %+v %v", p, err)
			}
			if strings.Contains(err.Error(), "127.0.0.1") {
				t.Fatalf("IP in error: %v", err)
			}
		})
	}
	if f.Cached() != 0 {
		t.Fatal("rejected policy cached")
	}
}

func TestFetcherCacheBounded(t *testing.T) {
	dns := dnsres.NewStatic()
	f, ps := newFetcher(t, dns, nil)
	ps.set(200, "text/plain", enforce)
	for _, d := range []string{"c1.test", "c2.test", "c3.test", "c4.test"} {
		dns.SetTXT("_mta-sts."+d, "v=STSv1; id=1")
		if _, err := f.Lookup(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		if f.Cached() > 2 {
			t.Fatalf("cache grew to %d", f.Cached())
		}
	}
}

func TestFetcherServerDown(t *testing.T) {
	dns := dnsres.NewStatic()
	dns.SetTXT("_mta-sts.d.test", "v=STSv1; id=1")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{},
		DialContext: func(ctx context.Context, n, _ string) (net.Conn, error) { return d.DialContext(ctx, n, addr) }}}
	f := NewFetcher(Config{Resolver: dns, Client: client, Timeout: 2 * time.Second})
	_, err = f.Lookup(context.Background(), "d.test")
	if !errors.Is(err, ErrFetch) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("got %v", err)
	}
}
