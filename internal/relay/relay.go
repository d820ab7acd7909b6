// Package relay delivers the outbound queue to other domains' MX hosts over
// SMTP (RFC 5321), with opportunistic STARTTLS (RFC 3207, RFC 7435) that
// becomes mandatory for configured domains and for domains publishing an
// MTA-STS policy in enforce mode (RFC 8461, see package mtasts), DKIM signing (RFC 6376), retries with
// exponential backoff, and delivery status notifications (RFC 3464) sealed
// into the sender's INBOX on permanent failure or expiry.
//
// Several workers, in one or several server nodes, lease entries from the
// shared store queue; each records every recipient's outcome with
// UpdateLeased right after the remote answered, so a crash re-sends only to
// recipients not yet done.
package relay

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smessenger/internal/dnsres"
	"smessenger/internal/relay/mtasts"
	"smessenger/internal/store"
)

// Backoff is the retry schedule: Base doubled per attempt, capped at Max.
type Backoff struct {
	Base time.Duration // default 1 minute
	Max  time.Duration // default 4 hours
}

// Config configures the relay. Zero values get the defaults noted.
type Config struct {
	Hostname     string        // our EHLO name; default "localhost"
	NodeID       string        // lease owner prefix; default host name + random
	Workers      int           // default 4
	LeaseTTL     time.Duration // default 10 minutes
	Lifetime     time.Duration // give up after; default 5 days (applied by Enqueue callers via Expires, and here when Expires is zero)
	Backoff      Backoff
	PollInterval time.Duration // idle wait when the queue is empty; default 1s
	Resolver     dnsres.Resolver
	// Routes maps a recipient domain to "host:port", bypassing MX lookup; the
	// key "*" routes every domain without its own entry (a smart host):
	// smart hosts in production, loopback servers in tests.
	Routes map[string]string
	// RequireTLS lists domains that must get verified STARTTLS; delivery to
	// them fails temporarily otherwise.
	RequireTLS []string
	// DKIM maps a sending domain to its key (ed25519 or RSA); DKIMSelector
	// names the key in DNS.
	DKIM         map[string]crypto.Signer
	DKIMSelector string
	TLS          *tls.Config // client TLS (RootCAs for tests); nil: system roots
	Port         string      // remote port for MX hosts; default "25"
	DialTimeout  time.Duration
	// Dial opens the TCP connection to a remote host ("host:port"); nil: a
	// net.Dialer. Tests map MX names to loopback with it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// STSClient fetches MTA-STS policies; nil: system roots. STSTimeout
	// bounds one fetch (default 60 s), STSCacheSize the cached domains
	// (default 10000). DisableMTASTS skips policy lookups altogether.
	STSClient     *http.Client
	STSTimeout    time.Duration
	STSCacheSize  int
	DisableMTASTS bool
	Now           func() time.Time
	// Metrics receives the queue gauge and delivery counter; nil: none.
	Metrics prometheus.Registerer
}

func (c *Config) defaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.NodeID == "" {
		h, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.NodeID = h + "-" + hex.EncodeToString(b[:])
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Minute
	}
	if c.Lifetime <= 0 {
		c.Lifetime = 5 * 24 * time.Hour
	}
	if c.Backoff.Base <= 0 {
		c.Backoff.Base = time.Minute
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = 4 * time.Hour
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Resolver == nil {
		c.Resolver = dnsres.Net{}
	}
	if c.Port == "" {
		c.Port = "25"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Relay works the outbound queue.
type Relay struct {
	cfg        Config
	st         store.Store
	log        *slog.Logger
	requireTLS map[string]bool
	metrics    *metrics
	sts        *mtasts.Fetcher // nil when MTA-STS is disabled
}

// New builds a relay over st; Run starts it.
func New(cfg Config, st store.Store, log *slog.Logger) *Relay {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{cfg: cfg, st: st, log: log, requireTLS: map[string]bool{}}
	for _, d := range cfg.RequireTLS {
		r.requireTLS[dnsres.Canonical(d)] = true
	}
	r.metrics = newMetrics(cfg.Metrics)
	if !cfg.DisableMTASTS {
		r.sts = mtasts.NewFetcher(mtasts.Config{Resolver: cfg.Resolver, Client: cfg.STSClient,
			Timeout: cfg.STSTimeout, MaxEntries: cfg.STSCacheSize, Now: cfg.Now})
	}
	return r
}

// Run starts the workers and blocks until ctx ends. An entry a worker held
// when ctx ended keeps its lease until LeaseTTL, then another takes it.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		owner := r.cfg.NodeID + "/" + string(rune('a'+i%26)) + hex.EncodeToString([]byte{byte(i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx, owner)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.gaugeLoop(ctx)
	}()
	wg.Wait()
	return ctx.Err()
}

func (r *Relay) worker(ctx context.Context, owner string) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("relay: worker panic", "panic", p)
		}
	}()
	for ctx.Err() == nil {
		e, err := r.st.Lease(ctx, owner, r.cfg.Now(), r.cfg.LeaseTTL)
		if errors.Is(err, store.ErrQueueEmpty) || err != nil {
			if err != nil && !errors.Is(err, store.ErrQueueEmpty) && ctx.Err() == nil {
				r.log.Warn("relay: lease failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.PollInterval):
			}
			continue
		}
		if err := r.process(ctx, e, owner); err != nil && ctx.Err() == nil {
			r.log.Warn("relay: entry not finished", "entry", e.ID, "err", err)
		}
	}
}

// ProcessOne leases and works one due entry as owner; it returns
// store.ErrQueueEmpty when none is due. Tests and the CLI use it to step
// the queue deterministically.
func (r *Relay) ProcessOne(ctx context.Context, owner string) error {
	e, err := r.st.Lease(ctx, owner, r.cfg.Now(), r.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	return r.process(ctx, e, owner)
}

// process delivers every recipient not yet done, domain by domain, then
// completes, bounces or reschedules the entry.
func (r *Relay) process(ctx context.Context, e store.QueueEntry, owner string) error {
	now := r.cfg.Now()
	expires := e.Expires
	if expires.IsZero() {
		expires = e.Created.Add(r.cfg.Lifetime)
	}
	if !now.Before(expires) {
		for i := range e.Recipients {
			if !e.Recipients[i].Done {
				e.Recipients[i].Done, e.Recipients[i].Failed = true, true
				if e.Recipients[i].LastError == "" {
					e.Recipients[i].LastError = "delivery time expired"
				}
				e.Recipients[i].LastError = "expired: " + e.Recipients[i].LastError
				r.metrics.delivered("expired")
			}
		}
		if err := r.st.UpdateLeased(ctx, e, owner); err != nil {
			return err
		}
		return r.finish(ctx, e, owner)
	}
	payload := r.sign(e)
	var lastErr string
	for _, domain := range pendingDomains(e) {
		res := r.deliverDomain(ctx, domain, e, payload)
		changed := false
		for i := range e.Recipients {
			rc := &e.Recipients[i]
			out, ok := res[store.NormalizeAddress(rc.Address)]
			if !ok || rc.Done {
				continue
			}
			changed = true
			rc.LastError = out.text
			switch out.kind {
			case outcomeDelivered:
				rc.Done = true
				r.metrics.delivered("delivered")
			case outcomeFailed:
				rc.Done, rc.Failed = true, true
				r.metrics.delivered("failed")
			default:
				lastErr = out.text
				r.metrics.delivered("deferred")
			}
		}
		if changed {
			// Record now: a crash from here on must not re-send to these.
			if err := r.st.UpdateLeased(ctx, e, owner); err != nil {
				return err
			}
		}
	}
	if allDone(e) {
		return r.finish(ctx, e, owner)
	}
	next := now.Add(r.backoff(e.Attempts))
	if next.After(expires) {
		next = expires
	}
	return r.st.Reschedule(ctx, e.ID, owner, next, lastErr)
}

// finish bounces failed recipients to the sender, then removes the entry.
// A crash between the two may produce a second DSN, never none.
func (r *Relay) finish(ctx context.Context, e store.QueueEntry, owner string) error {
	if anyFailed(e) {
		if err := r.bounce(ctx, e); err != nil {
			r.log.Warn("relay: DSN not delivered", "entry", e.ID, "err", err)
		}
	}
	return r.st.Complete(ctx, e.ID, owner)
}

func (r *Relay) backoff(attempts int) time.Duration {
	d := r.cfg.Backoff.Base
	for i := 0; i < attempts && d < r.cfg.Backoff.Max; i++ {
		d *= 2
	}
	if d > r.cfg.Backoff.Max {
		d = r.cfg.Backoff.Max
	}
	return d
}

func pendingDomains(e store.QueueEntry) []string {
	seen := map[string]bool{}
	var out []string
	for _, rc := range e.Recipients {
		if rc.Done {
			continue
		}
		d := domainOf(rc.Address)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return dnsres.Canonical(addr[i+1:])
}

func allDone(e store.QueueEntry) bool {
	for _, rc := range e.Recipients {
		if !rc.Done {
			return false
		}
	}
	return true
}

func anyFailed(e store.QueueEntry) bool {
	for _, rc := range e.Recipients {
		if rc.Failed {
			return true
		}
	}
	return false
}
