package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"smessenger/pgp"
)

// socks5 is a tiny CONNECT-only SOCKS5 server (RFC 1928, no auth) that
// records the host names it was asked for and sends every connection to
// target.
type socks5 struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	hosts  []string
}

func startSOCKS5(t *testing.T, target string) *socks5 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &socks5{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *socks5) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	if _, err := io.ReadFull(c, make([]byte, hdr[1])); err != nil {
		return
	}
	c.Write([]byte{5, 0})
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1:
		b := make([]byte, 4)
		io.ReadFull(c, b)
		host = net.IP(b).String()
	case 3:
		var l [1]byte
		io.ReadFull(c, l[:])
		b := make([]byte, l[0])
		io.ReadFull(c, b)
		host = string(b)
	default:
		return
	}
	var port [2]byte
	io.ReadFull(c, port[:])
	s.mu.Lock()
	s.hosts = append(s.hosts, host+":"+itoa(int(binary.BigEndian.Uint16(port[:]))))
	s.mu.Unlock()
	up, err := net.Dial("tcp", s.target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	c.SetDeadline(time.Time{})
	go io.Copy(up, c)
	io.Copy(c, up)
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func (s *socks5) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hosts...)
}

// wkdServer serves keys for example.com (the test certificate's domain)
// over HTTPS on loopback and returns a TLS config trusting its CA.
func wkdServer(t *testing.T, keys map[string]*pgp.Key) (*httptest.Server, *tls.Config) {
	t.Helper()
	h := pgp.WKDHandler(func(_ context.Context, addr string) ([]byte, error) {
		if k := keys[addr]; k != nil {
			return k.PublicBinary(), nil
		}
		return nil, errors.New("none")
	}, []string{"example.com"})
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, &tls.Config{RootCAs: pool}
}

// TestKeyDiscovery: Autocrypt learned from received mail, WKD directly and
// through a SOCKS5 proxy (host names unresolved), and the source order.
func TestKeyDiscovery(t *testing.T) {
	e := newRouterEnv(t, PolicyRefuse)
	ctx := context.Background()
	frank, _ := pgp.GenerateKey("Frank", "frank@example.com")
	grace, _ := pgp.GenerateKey("Grace", "grace@example.com")
	graceAC, _ := pgp.GenerateKey("Grace", "grace@example.com")
	srv, tlsCfg := wkdServer(t, map[string]*pgp.Key{"frank@example.com": frank, "grace@example.com": grace})
	toServer := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}

	t.Run("autocrypt", func(t *testing.T) {
		ac := &pgp.AutocryptHeader{Addr: "grace@example.com", PreferEncrypt: true, KeyData: graceAC.PublicBinary()}
		in := "From: Grace <grace@example.com>\r\nTo: " + alice + "\r\nSubject: hi\r\nDate: " +
			time.Now().Add(-time.Hour).Format(time.RFC1123Z) + "\r\nMessage-ID: <ac1@example.com>\r\n" +
			"Autocrypt: " + strings.ReplaceAll(ac.String(), "\r\n", "\r\n") + "\r\n\r\nhello\r\n"
		// Learned by the Account's hook as the message enters INBOX, with
		// no LearnFromMailbox call.
		if _, _, err := e.alice.Append(ctx, "INBOX", []byte(in), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		rt, err := e.router.resolve(ctx, "grace@example.com")
		if err != nil || rt.source != SourceAutocrypt || rt.key.Fingerprint() != graceAC.Fingerprint() {
			t.Fatalf("autocrypt route %+v, %v", rt, err)
		}
		// A header whose addr is not the sender's teaches nothing.
		if err := e.contacts.LearnAutocrypt("mallory@example.com", []byte("Autocrypt: "+ac.String()+"\r\n\r\n"), time.Now()); err != nil {
			t.Fatal(err)
		}
		if k, _ := e.contacts.AutocryptKey("mallory@example.com"); k != nil {
			t.Fatal("learned a key from a header for another address")
		}
	})

	t.Run("wkd-direct", func(t *testing.T) {
		wkd, err := NewWKDClient(WKDConfig{DialContext: toServer, TLS: tlsCfg, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := NewRouter(RouterConfig{Server: e.alice.Server(), Key: e.alice.Key(), Addresses: e.alice.Addresses,
			Contacts: e.contacts, WKD: wkd})
		rt, err := r.resolve(ctx, "frank@example.com")
		if err != nil || rt.source != "wkd" || rt.key.Fingerprint() != frank.Fingerprint() {
			t.Fatalf("wkd route %+v, %v", rt, err)
		}
		// Autocrypt comes before WKD.
		if rt, err := r.resolve(ctx, "grace@example.com"); err != nil || rt.source != SourceAutocrypt {
			t.Fatalf("grace route %+v, %v", rt, err)
		}
		if err := r.CheckRecipient(ctx, "nokey@example.com"); !errors.Is(err, ErrNoRecipientKey) {
			t.Fatalf("key-less WKD address: %v", err)
		}
	})

	t.Run("wkd-socks5", func(t *testing.T) {
		px := startSOCKS5(t, srv.Listener.Addr().String())
		var direct sync.Mutex
		directDials := []string{}
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			direct.Lock()
			directDials = append(directDials, addr)
			direct.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		wkd, err := NewWKDClient(WKDConfig{Proxy: "socks5://" + px.ln.Addr().String(), DialContext: dial,
			TLS: tlsCfg, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		k, err := wkd.Lookup(ctx, "frank@example.com")
		if err != nil || k.Fingerprint() != frank.Fingerprint() {
			t.Fatalf("lookup through proxy: %v", err)
		}
		asked := px.asked()
		if len(asked) == 0 || asked[0] != "openpgpkey.example.com:443" {
			t.Fatalf("proxy was asked for %v", asked)
		}
		direct.Lock()
		defer direct.Unlock()
		for _, d := range directDials {
			if d != px.ln.Addr().String() {
				t.Fatalf("dialled %s around the proxy", d)
			}
		}
		if _, err := NewWKDClient(WKDConfig{Proxy: "http://x:1"}); err == nil {
			t.Fatal("non-SOCKS proxy accepted")
		}
	})
}
