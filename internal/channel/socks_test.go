package channel

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// socks5Server is a minimal RFC 1928 proxy: no authentication, CONNECT
// only. It resolves names from its own table, as Tor resolves .onion
// addresses, and records the targets it was asked for.
type socks5Server struct {
	addr  string
	names map[string]string // host name → 127.0.0.1 address
	mu    sync.Mutex
	asked []string // "domain:host:port" or "ip:addr:port"
}

func startSOCKS5(t *testing.T, names map[string]string) *socks5Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &socks5Server{addr: ln.Addr().String(), names: names}
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

func (s *socks5Server) targets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

func (s *socks5Server) serve(c net.Conn) {
	defer c.Close()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	if _, err := io.ReadFull(c, make([]byte, hdr[1])); err != nil {
		return
	}
	c.Write([]byte{5, 0}) // no authentication
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[1] != 1 {
		return
	}
	var kind, host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(c, ip)
		kind, host = "ip", net.IP(ip).String()
	case 3:
		var n [1]byte
		io.ReadFull(c, n[:])
		name := make([]byte, n[0])
		io.ReadFull(c, name)
		kind, host = "domain", string(name)
	default:
		c.Write([]byte{5, 8, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	var pb [2]byte
	if _, err := io.ReadFull(c, pb[:]); err != nil {
		return
	}
	port := strconv.Itoa(int(binary.BigEndian.Uint16(pb[:])))
	s.mu.Lock()
	s.asked = append(s.asked, kind+":"+host+":"+port)
	s.mu.Unlock()
	target := net.JoinHostPort(host, port)
	if kind == "domain" {
		mapped, ok := s.names[host]
		if !ok {
			c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
			return
		}
		target = mapped
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
}

func TestDialThroughSOCKS5(t *testing.T) {
	s := startServer(t, ServerConfig{}, echo)
	const onion = "smessengerexampleexampleexampleexampleexampleexampleab.onion"
	px := startSOCKS5(t, map[string]string{onion: s.addr})
	cfg := s.client(t, "alice")
	cfg.Proxy = "socks5://" + px.addr
	c, err := Dial(ctxT(t), onion+":443", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("via tor")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "via tor" {
		t.Fatalf("echo via proxy: %q %v", buf, err)
	}
	if got := px.targets(); len(got) != 1 || got[0] != "domain:"+onion+":443" {
		t.Fatalf("proxy was asked for %q, want the unresolved host name", got)
	}
}

func TestDialDeadProxyFails(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	cfg := ClientConfig{ServerKey: mustKeys(t).Public, Static: mustKeys(t), Proxy: "socks5://" + deadAddr}
	_, err = Dial(ctxT(t), "server.example.onion:443", cfg)
	if err == nil || !strings.Contains(err.Error(), "through proxy") {
		t.Fatalf("err = %v, want a proxy dial error", err)
	}
	if errors.Is(err, ErrHandshake) {
		t.Fatalf("a dial failure is not a handshake failure: %v", err)
	}
	// The proxy itself refuses the target: also a clear error.
	px := startSOCKS5(t, map[string]string{})
	cfg.Proxy = "socks5://" + px.addr
	if _, err := Dial(ctxT(t), "unknown.onion:443", cfg); err == nil || !strings.Contains(err.Error(), "through proxy") {
		t.Fatalf("err = %v", err)
	}
}
