package smtpd

import (
	"context"
	"fmt"
	"sync"
	"time"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// mxKeyCache keeps parsed recipient keys for a short time: parsing a key
// costs more than sealing a small message, and a key change (rare) becomes
// visible within ttl.
type mxKeyCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[store.AccountID]mxCachedKey
}

type mxCachedKey struct {
	key     *pgp.Key
	expires time.Time
}

func newMXKeyCache(ttl time.Duration, max int) *mxKeyCache {
	return &mxKeyCache{ttl: ttl, max: max, m: map[store.AccountID]mxCachedKey{}}
}

// get returns the account's parsed public key, from cache or the store.
func (c *mxKeyCache) get(ctx context.Context, st store.Store, id store.AccountID, now time.Time) (*pgp.Key, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	bin, err := st.PublicKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("smtpd: public key: %w", err)
	}
	k, err := pgp.ReadKey(bin)
	if err != nil {
		return nil, fmt.Errorf("smtpd: public key: %w", err)
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		// Bounded memory: dropping everything is cheap and rare.
		c.m = map[store.AccountID]mxCachedKey{}
	}
	c.m[id] = mxCachedKey{key: k, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return k, nil
}
