package relay

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// evilRemote answers STARTTLS with a 220 followed, in the same write, by
// an injected 550 line; an injectable client would read that line as the
// reply to its next command and fail the delivery.
func evilRemote(t *testing.T) (addr string, delivered chan string) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	delivered = make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		c.Write([]byte("220 evil ESMTP\r\n"))
		r.ReadString('\n') // EHLO
		c.Write([]byte("250-evil\r\n250 STARTTLS\r\n"))
		r.ReadString('\n') // STARTTLS
		c.Write([]byte("220 go ahead\r\n550 5.7.1 injected\r\n"))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		tr := bufio.NewReader(tc)
		var data strings.Builder
		for {
			line, err := tr.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"):
				tc.Write([]byte("250 evil\r\n"))
			case cmd == "DATA":
				tc.Write([]byte("354 go\r\n"))
				for {
					l, err := tr.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
					data.WriteString(l)
				}
				tc.Write([]byte("250 ok\r\n"))
				delivered <- data.String()
			case cmd == "QUIT":
				tc.Write([]byte("221 bye\r\n"))
				return
			default:
				tc.Write([]byte("250 ok\r\n"))
			}
		}
	}()
	return l.Addr().String(), delivered
}

func TestRelaySTARTTLSInjection(t *testing.T) {
	e := setupRelay(t)
	addr, delivered := evilRemote(t)
	e.r.cfg.Routes["evil.test"] = addr
	e.enqueue(t, "x@evil.test")
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-delivered:
		if !strings.Contains(d, "hello outside") {
			t.Fatalf("wrong data: %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered: the injected reply was taken as a response")
	}
	if q, _ := e.st.ListQueue(t.Context(), false); len(q) != 0 {
		t.Fatal("entry not completed")
	}
}

// TestRelayWildcardRoute sends a domain without its own route to the "*"
// smart host.
func TestRelayWildcardRoute(t *testing.T) {
	e := setupRelay(t)
	addr, delivered := evilRemote(t)
	e.r.cfg.Routes["*"] = addr
	e.enqueue(t, "someone@anywhere.test")
	if err := e.step(t); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-delivered:
		if !strings.Contains(d, "hello outside") {
			t.Fatalf("wrong data: %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered through the * route")
	}
}
