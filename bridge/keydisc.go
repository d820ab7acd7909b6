package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/proxy"

	"smessenger/pgp"
)

// AutocryptSource gives the key learned for an address from Autocrypt
// headers of mail received from it (Autocrypt Level 1, section 2.3).
// AutocryptKey returns nil and no error when nothing usable was learned.
// *Contacts implements it.
type AutocryptSource interface {
	AutocryptKey(address string) (*pgp.Key, error)
}

var _ AutocryptSource = (*Contacts)(nil)

// AutocryptKey returns the key of the last valid Autocrypt header seen from
// address. The bridge encrypts to it whatever the peer's prefer-encrypt
// says: a user of an encrypted mail service wants encryption whenever a key
// is known.
func (c *Contacts) AutocryptKey(address string) (*pgp.Key, error) {
	address = normAddr(address)
	var kd []byte
	err := c.view(func(d *contactsData) error {
		if p := d.Autocrypt[address]; p != nil {
			kd = p.KeyData
		}
		return nil
	})
	if err != nil || len(kd) == 0 {
		return nil, err
	}
	k, err := pgp.ReadKey(kd)
	if err != nil {
		// A key that expired since it was learned is as good as none.
		return nil, nil
	}
	return k, nil
}

// LearnAutocrypt updates the Autocrypt state of from with a received
// message's header section (the Autocrypt fields in it) dated date. Per
// Level 1 section 2.3, only a header whose addr is the From address counts
// and more than one such header counts as none. Only peers that have sent
// an Autocrypt header at least once are remembered (who writes to us is
// private; the file only records what encryption needs).
func (c *Contacts) LearnAutocrypt(from string, header []byte, date time.Time) error {
	from = normAddr(from)
	if from == "" {
		return nil
	}
	h := autocryptHeaderFor(from, header)
	return c.update(func(d *contactsData) (bool, error) {
		p := d.Autocrypt[from]
		if p == nil {
			if h == nil {
				return false, nil
			}
			p = &pgp.AutocryptPeer{Addr: from}
		}
		before := *p
		p.Update(h, date)
		d.Autocrypt[from] = p
		changed := !before.LastSeen.Equal(p.LastSeen) || !before.AutocryptTimestamp.Equal(p.AutocryptTimestamp) ||
			string(before.KeyData) != string(p.KeyData) || before.PreferEncrypt != p.PreferEncrypt
		return changed, nil
	})
}

// autocryptHeaderFor returns the single valid Autocrypt header of header
// whose addr is from, or nil.
func autocryptHeaderFor(from string, header []byte) *pgp.AutocryptHeader {
	fields, _ := splitMessage(header)
	var found *pgp.AutocryptHeader
	for _, f := range fields {
		if fieldName(f) != "autocrypt" {
			continue
		}
		h, err := pgp.ParseAutocrypt(fieldValue(f))
		if err != nil || !strings.EqualFold(h.Addr, from) {
			continue
		}
		if found != nil {
			return nil
		}
		found = h
	}
	return found
}

// WKDConfig says how the bridge reaches the Web Key Directory.
type WKDConfig struct {
	// Proxy is the bridge's SOCKS5 proxy URL (socks5://host:port), or "".
	// With a proxy every WKD lookup goes through it with the host name
	// unresolved, so Tor users do not leak whom they write to through DNS.
	Proxy string
	// DialContext, if set, replaces the direct dialer (tests point it at
	// loopback). It is also what the proxy itself is reached through.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, if set, is the HTTPS client configuration (tests trust a test
	// CA with it); nil uses the system roots.
	TLS      *tls.Config
	Timeout  time.Duration // per lookup; 0: pgp.DefaultWKDTimeout
	MaxBytes int64         // per response; 0: pgp.DefaultWKDMaxBytes
}

// dialerFunc adapts a DialContext function to proxy.Dialer.
type dialerFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialerFunc) Dial(network, addr string) (net.Conn, error) {
	return f(context.Background(), network, addr)
}

func (f dialerFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// NewWKDClient returns a WKD client whose HTTP connections go through the
// configured proxy. Environment proxy variables are ignored: the bridge's
// own setting is the only one that applies.
func NewWKDClient(cfg WKDConfig) (*pgp.WKDClient, error) {
	dial := cfg.DialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	if cfg.Proxy != "" {
		u, err := url.Parse(cfg.Proxy)
		if err != nil || (u.Scheme != "socks5" && u.Scheme != "socks5h") || u.Host == "" {
			return nil, errors.New("bridge: WKD proxy must be socks5://host:port")
		}
		pd, err := proxy.FromURL(u, dialerFunc(dial))
		if err != nil {
			return nil, fmt.Errorf("bridge: WKD proxy: %w", err)
		}
		cd, ok := pd.(proxy.ContextDialer)
		if !ok {
			return nil, errors.New("bridge: WKD proxy cannot dial with a context")
		}
		dial = cd.DialContext
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dial,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        8,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
	}
	return &pgp.WKDClient{HTTP: &http.Client{Transport: tr}, Timeout: cfg.Timeout, MaxBytes: cfg.MaxBytes}, nil
}

// wkdCache remembers WKD answers (keys and "none") for a while, so that the
// RCPT check and the send that follows do one lookup, and a burst of mail to
// the same address does not hammer its domain.
type wkdCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]wkdAnswer
}

type wkdAnswer struct {
	key *pgp.Key
	at  time.Time
}

// maxWKDCache bounds the cache; it is cleared when full.
const maxWKDCache = 4096

func (c *wkdCache) get(addr string) (*pgp.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[addr]
	if !ok || c.now().Sub(a.at) > c.ttl {
		return nil, false
	}
	return a.key, true
}

func (c *wkdCache) put(addr string, k *pgp.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxWKDCache {
		c.m = map[string]wkdAnswer{}
	}
	c.m[addr] = wkdAnswer{key: k, at: c.now()}
}

// LearnFromMailbox feeds the Autocrypt headers of every message in an
// Account mailbox (normally INBOX) to LearnAutocrypt, oldest first as the
// Level 1 update rules expect. It reads only the cached header summaries.
// New mail is learned as it arrives (NewRouter registers the Account's
// learner); this catches up on mail synced before a router existed.
func (r *Router) LearnFromMailbox(ctx context.Context, mailbox string) error {
	a := r.cfg.Account
	if a == nil || r.cfg.Contacts == nil {
		return nil
	}
	msgs, err := a.Messages(ctx, mailbox)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		s := m.Summary
		if s == nil || len(s.Envelope.From) != 1 || !bytesContainFold(s.Header, "autocrypt:") {
			continue
		}
		f := s.Envelope.From[0]
		date := s.Envelope.Date
		if date.IsZero() {
			date = m.InternalDate
		}
		if err := r.cfg.Contacts.LearnAutocrypt(f.Mailbox+"@"+f.Host, s.Header, date); err != nil {
			return err
		}
	}
	return nil
}

// bytesContainFold is a cheap pre-filter: most mail has no Autocrypt field.
func bytesContainFold(b []byte, lowerSub string) bool {
	return strings.Contains(strings.ToLower(string(b)), lowerSub)
}
