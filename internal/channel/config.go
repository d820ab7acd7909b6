package channel

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// ServerConfig configures the server side.
type ServerConfig struct {
	// TLS is the outer TLS configuration; MinVersion is raised to TLS 1.3.
	// Nil means an ephemeral self-signed certificate made at start-up, which
	// is enough because clients authenticate the server by its Noise key.
	TLS *tls.Config
	// Static is the server's Noise static key pair; clients pin its public
	// half (see Fingerprint).
	Static KeyPair
	// Authorize is called with the device's static key (proven by the
	// handshake) and message 1's payload (empty, or an enrolment token of at
	// most MaxPayload bytes). It returns the Peer, or an error: then the
	// client learns only that it was refused (ErrUnauthorized). Any error,
	// including a store failure, refuses. A panic in it is recovered and
	// refuses. ctx ends with the handshake deadline.
	Authorize func(ctx context.Context, deviceKey []byte, payload []byte) (Peer, error)
	// HandshakeTimeout bounds TLS plus Noise handshake; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// plaintext skips TLS: test-only, to tamper with frames on the wire.
	plaintext bool
}

func (cfg *ServerConfig) check() error {
	if err := cfg.Static.check(); err != nil {
		return fmt.Errorf("%w: server key: %w", ErrHandshake, err)
	}
	if cfg.Authorize == nil {
		return fmt.Errorf("%w: ServerConfig.Authorize is nil", ErrHandshake)
	}
	return nil
}

// ClientConfig configures the device side.
type ClientConfig struct {
	// ServerKey is the server's pinned Noise static public key.
	ServerKey []byte
	// Static is this device's key pair.
	Static KeyPair
	// Payload is the enrolment token on first contact, else nil; at most
	// MaxPayload bytes. It travels encrypted to ServerKey.
	Payload []byte
	// TLS is the outer TLS configuration; MinVersion is raised to TLS 1.3.
	// Nil means TLS 1.3 without certificate verification. That is safe only
	// because the Noise handshake authenticates the server by ServerKey; TLS
	// then just hides the handshake. Set RootCAs (and ServerName, which Dial
	// fills from addr if empty) to verify the certificate as well.
	TLS *tls.Config
	// Proxy is "" or a SOCKS5 URL, "socks5://host:port" (or socks5h://,
	// optionally with user:password@ for Tor stream isolation). The proxy
	// resolves the target's host name, so .onion addresses work.
	Proxy string
	// HandshakeTimeout bounds TLS plus Noise handshake; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// plaintext skips TLS: test-only, to tamper with frames on the wire.
	plaintext bool
}

func (cfg *ClientConfig) check() error {
	if err := cfg.Static.check(); err != nil {
		return fmt.Errorf("%w: device key: %w", ErrHandshake, err)
	}
	if err := checkPublic(cfg.ServerKey); err != nil {
		return fmt.Errorf("%w: server key: %w", ErrHandshake, err)
	}
	if len(cfg.Payload) > MaxPayload {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrHandshake, len(cfg.Payload), MaxPayload)
	}
	return nil
}

// Server wraps an accepted connection. The handshake runs on first use or
// through Handshake. Conns made this way are not in any listener's registry;
// use Listen for CloseDevice.
func Server(raw net.Conn, cfg ServerConfig) *Conn {
	return newServer(raw, &cfg)
}

func newServer(raw net.Conn, cfg *ServerConfig) *Conn {
	return newServerTLS(raw, cfg, serverTLS(cfg.TLS))
}

// newServerTLS is newServer with the TLS config already prepared, so that a
// listener clones it once rather than per connection (a clone is about a
// kilobyte kept for the connection's lifetime, plus its own ticket keys).
func newServerTLS(raw net.Conn, cfg *ServerConfig, tc *tls.Config) *Conn {
	var conn net.Conn = raw
	if !cfg.plaintext {
		conn = tls.Server(raw, tc)
	}
	c := newConn(raw, conn)
	c.server = cfg
	return c
}

// Client wraps a connection to the server. The handshake runs on first use or
// through Handshake. If cfg.TLS verifies certificates it must name the
// server (ServerName); Dial does that itself.
func Client(raw net.Conn, cfg ClientConfig) *Conn {
	return newClient(raw, &cfg, "")
}

// newClient is Client with host filling an empty TLS ServerName.
func newClient(raw net.Conn, cfg *ClientConfig, host string) *Conn {
	var conn net.Conn = raw
	if !cfg.plaintext {
		conn = tls.Client(raw, clientTLS(cfg.TLS, host))
	}
	c := newConn(raw, conn)
	c.client = cfg
	return c
}

// serverTLS copies cfg with TLS 1.3 as the floor, or makes the default.
func serverTLS(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: ephemeralCert}
	}
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}

// clientTLS copies cfg with TLS 1.3 as the floor, or makes the default (see
// ClientConfig.TLS for why skipping verification is acceptable there).
// host fills an empty ServerName.
func clientTLS(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, ServerName: host}
	}
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

var ephemeral struct {
	once sync.Once
	cert *tls.Certificate
	err  error
}

// ephemeralCert makes one self-signed ECDSA certificate per process, lazily.
func ephemeralCert(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	ephemeral.once.Do(func() {
		ephemeral.cert, ephemeral.err = selfSigned("smessenger-channel")
	})
	return ephemeral.cert, ephemeral.err
}

func selfSigned(name string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("channel: tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("channel: tls serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("channel: tls certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
