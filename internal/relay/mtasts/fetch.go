package mtasts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"smessenger/internal/dnsres"
)

// MaxBodySize bounds a fetched policy; RFC 8461 section 3.3 lets senders
// refuse larger ones, and 64 KiB is far beyond any real policy.
const MaxBodySize = 64 << 10

// ErrFetch is returned (wrapped) when the policy could not be fetched over
// HTTPS. The text names the kind of failure only: network errors carry IP
// addresses, which must not reach the logs.
var ErrFetch = errors.New("mtasts: policy fetch failed")

// Config configures a Fetcher. Zero values get the defaults noted.
type Config struct {
	Resolver dnsres.Resolver // required
	// Client fetches https://mta-sts.<domain>/.well-known/mta-sts.txt; nil:
	// a client with the system roots. Redirects are never followed
	// (section 3.3) whatever the client's own CheckRedirect says.
	Client     *http.Client
	Timeout    time.Duration // per fetch; default 60 s (section 3.3 suggests at least that)
	MaxEntries int           // cached domains; default 10000
	Now        func() time.Time
}

// Fetcher finds the policy of a domain, caching it. It is safe for
// concurrent use.
type Fetcher struct {
	cfg    Config
	client http.Client

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	id      string
	policy  *Policy
	expires time.Time
}

// NewFetcher returns a Fetcher with an empty cache.
func NewFetcher(cfg Config) *Fetcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Fetcher{cfg: cfg, cache: map[string]cached{}}
	if cfg.Client != nil {
		f.client = *cfg.Client
	}
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return f
}

// Lookup returns domain's policy, or an error wrapping ErrNoRecord,
// ErrFetch or ErrInvalidPolicy when it has none the sender can use. An
// unexpired cached policy is used when the TXT record is gone or unchanged,
// and when a changed one cannot be fetched (section 5.1): a DNS or HTTPS
// attacker cannot strip a policy already known.
func (f *Fetcher) Lookup(ctx context.Context, domain string) (*Policy, error) {
	domain = dnsres.Canonical(domain)
	now := f.cfg.Now()
	f.mu.Lock()
	c, ok := f.cache[domain]
	f.mu.Unlock()
	if ok && !now.Before(c.expires) {
		ok = false
	}
	txt, err := f.cfg.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	var id string
	if err == nil {
		id, err = ParseTXT(txt)
	} else {
		err = fmt.Errorf("%w: %w", ErrNoRecord, err)
	}
	if err != nil {
		if ok {
			return c.policy, nil
		}
		return nil, err
	}
	if ok && c.id == id {
		return c.policy, nil
	}
	p, err := f.fetch(ctx, domain)
	if err != nil {
		if ok {
			return c.policy, nil
		}
		return nil, err
	}
	f.store(domain, cached{id: id, policy: p, expires: now.Add(p.MaxAge)}, now)
	return p, nil
}

// store caches a policy, evicting expired entries and then the one closest
// to expiry when the cache is full, so memory stays bounded.
func (f *Fetcher) store(domain string, c cached, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cache[domain]; !ok && len(f.cache) >= f.cfg.MaxEntries {
		victim, first := "", true
		for d, e := range f.cache {
			if !now.Before(e.expires) {
				delete(f.cache, d)
				continue
			}
			if first || e.expires.Before(f.cache[victim].expires) {
				victim, first = d, false
			}
		}
		if len(f.cache) >= f.cfg.MaxEntries {
			delete(f.cache, victim)
		}
	}
	f.cache[domain] = c
}

// Cached reports how many domains have a cached policy (for tests and
// metrics).
func (f *Fetcher) Cached() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cache)
}

func (f *Fetcher) fetch(ctx context.Context, domain string) (*Policy, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: bad domain name", ErrFetch)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: timeout", ErrFetch)
		}
		return nil, fmt.Errorf("%w: connection or TLS failure", ErrFetch)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP status %d", ErrFetch, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, fmt.Errorf("%w: content type is not text/plain", ErrFetch)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: body read failed", ErrFetch)
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%w: policy larger than %d bytes", ErrFetch, MaxBodySize)
	}
	return Parse(body)
}
