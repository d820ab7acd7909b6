package bridge

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// routeKind is how one recipient is reached.
type routeKind int

const (
	routeInternal  routeKind = iota + 1 // sealed, delivered through the API
	routeEncrypted                      // PGP/MIME to the outside
	routePlain                          // plaintext to the outside (policy plain)
)

// route is the decision for one recipient.
type route struct {
	addr   string // as given in the envelope
	kind   routeKind
	key    *pgp.Key
	source string // where the key came from, for logs and tests
}

// dirCache remembers the server directory's answers for a short while: a
// submission asks once at RCPT and once at DATA, and a burst of mail to the
// same user should not cost a round trip per message.
type dirCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]dirAnswer
}

type dirAnswer struct {
	raw      string // the key as the server sent it
	key      *pgp.Key
	internal bool
	notFound bool
	at       time.Time
}

// maxDirCache bounds the cache; it is cleared when full.
const maxDirCache = 4096

func (c *dirCache) get(addr string) (dirAnswer, bool) {
	if c.ttl < 0 {
		return dirAnswer{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[addr]
	if !ok || c.now().Sub(a.at) > c.ttl {
		return dirAnswer{}, false
	}
	return a, true
}

// parsed returns the parsed key previously cached for the same bytes.
func (c *dirCache) parsed(addr string, raw []byte) *pgp.Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.m[addr]; ok && a.raw == string(raw) {
		return a.key
	}
	return nil
}

func (c *dirCache) put(addr string, a dirAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxDirCache {
		c.m = map[string]dirAnswer{}
	}
	a.at = c.now()
	c.m[addr] = a
}

// checkAddress refuses what cannot be an address before anything is asked.
func checkAddress(addr string) error {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 || len(addr) > 254 || strings.ContainsAny(addr, " \t\r\n<>,;\"\\\x00") {
		return &SendError{Address: addr, Reason: "is not a valid e-mail address", Err: ErrBadAddress}
	}
	return nil
}

// lookupDirectory asks the server's directory about addr.
func (r *Router) lookupDirectory(ctx context.Context, addr string) (dirAnswer, error) {
	if a, ok := r.dir.get(addr); ok {
		return a, nil
	}
	kb, internal, err := r.srv.LookupKey(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		a := dirAnswer{notFound: true}
		r.dir.put(addr, a)
		return a, nil
	}
	if err != nil {
		return dirAnswer{}, err
	}
	a := dirAnswer{raw: string(kb), internal: internal}
	if a.key = r.dir.parsed(addr, kb); a.key == nil && len(kb) > 0 {
		if a.key, err = pgp.ReadKey(kb); err != nil {
			return dirAnswer{}, &SendError{Address: addr, Reason: "the recipient's published key is not usable",
				Err: errors.Join(ErrRecipientKeyUnusable, err)}
		}
	}
	r.dir.put(addr, a)
	return a, nil
}

// ownDomain reports whether addr's domain is one of the account's own,
// i.e. one the server answers for.
func (r *Router) ownDomain(addr string) bool {
	d := strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
	for _, a := range r.addrs() {
		if i := strings.LastIndexByte(a, '@'); i >= 0 && strings.ToLower(a[i+1:]) == d {
			return true
		}
	}
	return false
}

// resolve decides how rcpt is reached, or returns a *SendError.
func (r *Router) resolve(ctx context.Context, rcpt string) (route, error) {
	if err := checkAddress(rcpt); err != nil {
		return route{}, err
	}
	addr := normAddr(rcpt)
	dir, err := r.lookupDirectory(ctx, addr)
	if err != nil {
		var se *SendError
		if errors.As(err, &se) {
			return route{}, err
		}
		r.log.Warn("bridge: key directory lookup failed", "err", err)
		return route{}, &SendError{Address: rcpt, Reason: "the key directory is unreachable, try again later",
			Temporary: true, Err: errors.Join(ErrSendFailed, err)}
	}
	if dir.internal {
		return r.resolveInternal(rcpt, dir)
	}
	if dir.notFound && r.ownDomain(addr) {
		return route{}, &SendError{Address: rcpt, Reason: "no such user", Err: ErrUnknownRecipient}
	}
	return r.resolveExternal(ctx, rcpt, addr)
}

func (r *Router) resolveInternal(rcpt string, dir dirAnswer) (route, error) {
	if dir.key == nil {
		return route{}, &SendError{Address: rcpt, Reason: "the recipient has no key yet, try again later",
			Temporary: true, Err: ErrRecipientKeyUnusable}
	}
	if c := r.cfg.Contacts; c != nil {
		err := c.checkPin(rcpt, dir.key.Fingerprint())
		if errors.Is(err, ErrKeyChanged) {
			return route{}, &SendError{Address: rcpt, Err: ErrKeyChanged,
				Reason: "the recipient's key changed since you last wrote (now " + dir.key.DisplayFingerprint() +
					"); verify it, then run: smessenger bridge contacts trust " + normAddr(rcpt)}
		}
		if err != nil {
			r.log.Warn("bridge: contacts file unusable", "err", err)
			return route{}, &SendError{Address: rcpt, Reason: "the local contacts file cannot be read",
				Temporary: true, Err: errors.Join(ErrSendFailed, err)}
		}
	}
	return route{addr: rcpt, kind: routeInternal, key: dir.key, source: "directory"}, nil
}

func (r *Router) resolveExternal(ctx context.Context, rcpt, addr string) (route, error) {
	if c := r.cfg.Contacts; c != nil {
		k, err := c.keyringKey(addr)
		if err != nil {
			return route{}, &SendError{Address: rcpt, Reason: "the imported key is not usable (expired or revoked?)",
				Err: errors.Join(ErrRecipientKeyUnusable, err)}
		}
		if k != nil {
			return route{addr: rcpt, kind: routeEncrypted, key: k, source: SourceKeyring}, nil
		}
	}
	if src := r.cfg.Autocrypt; src != nil {
		if k, err := src.AutocryptKey(addr); err == nil && k != nil {
			return route{addr: rcpt, kind: routeEncrypted, key: k, source: SourceAutocrypt}, nil
		}
	}
	if r.cfg.WKD != nil {
		k, ok := r.wkd.get(addr)
		if !ok {
			var err error
			k, err = r.cfg.WKD.Lookup(ctx, addr)
			if err != nil {
				if ctx.Err() != nil {
					return route{}, &SendError{Address: rcpt, Reason: "key lookup interrupted", Temporary: true,
						Err: errors.Join(ErrSendFailed, err)}
				}
				k = nil
			}
			r.wkd.put(addr, k)
		}
		if k != nil {
			return route{addr: rcpt, kind: routeEncrypted, key: k, source: "wkd"}, nil
		}
	}
	if r.cfg.Policy == PolicyPlain {
		return route{addr: rcpt, kind: routePlain}, nil
	}
	return route{}, &SendError{Address: rcpt, Err: ErrNoRecipientKey,
		Reason: "no OpenPGP key known for this external recipient and this account does not send unencrypted mail " +
			"(import the key with: smessenger bridge contacts import FILE.asc)"}
}
