package smtpd

import (
	"context"
	"errors"
	"sync"
	"time"

	"smessenger/internal/store"
)

// mxDirCache remembers, for a few seconds, that an address belongs to an
// account that still had room. Every RCPT otherwise costs two store reads,
// and on Redis with appendfsync always a read issued while others write is
// answered only after the next fsync, so the lookups, not the sealing, set
// the pace of a busy MX. Only good answers are kept: an unknown address or
// a full mailbox is asked again each time, so a new account receives mail
// at once and a mailbox that was emptied is open at once. What the cache can
// get wrong for up to ttl is an account deleted, or an alias moved, after
// its last lookup; the append then fails (451, the sender retries and meets
// the new state) or reaches the old owner, as it would have a moment
// earlier. The durable quota check is in the append itself.
type mxDirCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]mxDirEntry
}

type mxDirEntry struct {
	acct    store.AccountID
	expires time.Time
}

func newMXDirCache(ttl time.Duration, max int) *mxDirCache {
	return &mxDirCache{ttl: ttl, max: max, m: map[string]mxDirEntry{}}
}

// errMailboxFull is the directory's answer for an account at its quota.
var errMailboxFull = errors.New("smtpd: mailbox full")

// lookup resolves a normalized address to its account: store.ErrNotFound
// (or ErrAccountNotFound) for no such user, errMailboxFull for an account
// over quota.
func (c *mxDirCache) lookup(ctx context.Context, st store.Store, addr string, now time.Time) (store.AccountID, error) {
	c.mu.Lock()
	e, ok := c.m[addr]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.acct, nil
	}
	acct, err := st.LookupAddress(ctx, addr)
	if err != nil {
		return "", err
	}
	a, err := st.GetAccount(ctx, acct)
	if err != nil {
		return "", err
	}
	if a.QuotaBytes > 0 && a.UsedBytes >= a.QuotaBytes {
		return "", errMailboxFull
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		// Bounded memory: dropping everything is cheap and rare.
		c.m = map[string]mxDirEntry{}
	}
	c.m[addr] = mxDirEntry{acct: acct, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return acct, nil
}
