// Package smtpd holds the SMTP front ends built on go-smtp: the MX, which
// receives mail from the internet for local users and seals it on arrival,
// and (in submission*.go) the bridge-side submission server.
//
// The MX implements RFC 5321 (SMTP) with RFC 3207 (STARTTLS), RFC 6531
// (SMTPUTF8) and RFC 8689 (REQUIRETLS) as go-smtp allows; it checks SPF
// (RFC 7208, evaluator in mx_spf.go), DKIM (RFC 6376) and DMARC (RFC 7489)
// and records them in an Authentication-Results field (RFC 8601) that is
// sealed with the message. Per RFC 5321 section 2.3.8 it refuses bare CR and
// LF, which closes the SMTP smuggling vectors.
//
// Autocrypt (Autocrypt Level 1) headers of incoming mail are not parsed
// here: they stay inside the sealed message, where the recipient's bridge
// learns them when it syncs; who writes to whom is private, so the server
// keeps no record of them.
package smtpd

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/internal/dnsres"
	"smessenger/internal/logging"
	"smessenger/internal/store"
)

// MXConfig configures the MX. Zero values get the defaults noted.
type MXConfig struct {
	Domains           []string      // domains we accept mail for; required
	Hostname          string        // our name in the greeting and Authentication-Results
	TLS               *tls.Config   // STARTTLS certificate; nil: no STARTTLS
	MaxMessageBytes   int64         // default 25 MiB; over it: 552
	MaxRecipients     int           // default 100; over it: 452
	MaxLineLength     int           // default 2000 (RFC 5321 section 4.5.3.1.6 doubled)
	MaxHeaderBytes    int           // default 256 KiB; over it: 552
	MaxParts          int           // default 1000 MIME parts; over it: 554
	MaxDepth          int           // default 30 nesting levels; over it: 554
	DataTimeout       time.Duration // hard limit on one DATA transfer, default 10 min
	ConnsPerSource    int           // concurrent connections per source, default 20
	CommandsPerMinute int           // per source, default 600
	Resolver          dnsres.Resolver
	Now               func() time.Time
}

func (c *MXConfig) defaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 25 << 20
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 100
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = 2000
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 256 << 10
	}
	if c.MaxParts <= 0 {
		c.MaxParts = 1000
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 30
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = 10 * time.Minute
	}
	if c.ConnsPerSource <= 0 {
		c.ConnsPerSource = 20
	}
	if c.CommandsPerMinute <= 0 {
		c.CommandsPerMinute = 600
	}
	if c.Resolver == nil {
		c.Resolver = dnsres.Net{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// MX is the inbound SMTP server for mail from outside.
type MX struct {
	cfg MXConfig
	st  store.Store
	log *slog.Logger
	frontEnd
	domains map[string]bool
	keys    *mxKeyCache
	dir     *mxDirCache
	limiter *mxLimiter
}

// NewMX builds an MX over st. It does not listen; call Serve.
func NewMX(cfg MXConfig, st store.Store, log *slog.Logger) *MX {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &MX{
		cfg:     cfg,
		st:      st,
		log:     log,
		domains: map[string]bool{},
		keys:    newMXKeyCache(time.Minute, 4096),
		dir:     newMXDirCache(5*time.Second, 65536),
		limiter: newMXLimiter(cfg.ConnsPerSource, cfg.CommandsPerMinute, cfg.Now),
	}
	for _, d := range cfg.Domains {
		m.domains[dnsres.Canonical(d)] = true
	}
	s := smtp.NewServer(smtp.BackendFunc(m.newSession))
	s.Domain = cfg.Hostname
	s.TLSConfig = cfg.TLS
	s.MaxMessageBytes = cfg.MaxMessageBytes
	s.MaxRecipients = cfg.MaxRecipients
	s.MaxLineLength = cfg.MaxLineLength
	// Per-command idle limit; DATA gets its own hard limit in the session.
	s.ReadTimeout = 5 * time.Minute
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	s.EnableREQUIRETLS = cfg.TLS != nil
	s.ErrorLog = logging.StdLogger(log)
	m.srv = s
	return m
}

// Serve accepts connections on l until Close. Every connection is wrapped
// so that bare CR/LF in commands are refused and the per-source limits hold.
func (m *MX) Serve(l net.Listener) error {
	return m.serve(&mxListener{Listener: l, mx: m})
}

// Close stops the listeners and closes every connection. A message whose
// DATA had not been acknowledged is not stored, so its sender retries.
func (m *MX) Close() error { return m.close() }

// Shutdown stops accepting and waits for sessions to finish, or ctx.
func (m *MX) Shutdown(ctx context.Context) error {
	return m.srv.Shutdown(ctx)
}

func (m *MX) newSession(c *smtp.Conn) (smtp.Session, error) {
	src := mxSourceOf(c.Conn())
	if !m.limiter.command(src) {
		return nil, errRateLimited
	}
	return &mxSession{mx: m, conn: c, src: src}, nil
}

// localDomain reports whether d is one of ours.
func (m *MX) localDomain(d string) bool {
	return m.domains[dnsres.Canonical(d)]
}
