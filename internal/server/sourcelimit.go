package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"sync"
	"time"
)

// maxSources bounds the limiter's memory. Past it, new sources are let
// through until the window resets: a flood from that many addresses is a
// volumetric attack the limiter cannot stop anyway, and failing closed would
// lock out every user.
const maxSources = 100_000

// sourceLimiter counts new connections per source address in fixed
// one-minute windows. It never keeps an address: the map key is
// HMAC-SHA256(secret, ip), truncated, with a random secret replaced every
// hour (and the counts dropped with it), all in memory only.
type sourceLimiter struct {
	perMinute int
	now       func() time.Time

	mu          sync.Mutex
	secret      []byte
	secretSince time.Time
	window      time.Time
	counts      map[[16]byte]int
}

func newSourceLimiter(perMinute int, now func() time.Time) *sourceLimiter {
	if now == nil {
		now = time.Now
	}
	return &sourceLimiter{perMinute: perMinute, now: now, counts: map[[16]byte]int{}}
}

// allow counts one connection from ip and reports whether it is within
// the limit.
func (l *sourceLimiter) allow(ip net.IP) bool {
	if l.perMinute <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.secret == nil || now.Sub(l.secretSince) >= time.Hour {
		l.secret = make([]byte, 32)
		if _, err := rand.Read(l.secret); err != nil {
			return true
		}
		l.secretSince = now
		clear(l.counts)
	}
	if now.Sub(l.window) >= time.Minute {
		l.window = now
		clear(l.counts)
	}
	m := hmac.New(sha256.New, l.secret)
	m.Write(ip.To16())
	var k [16]byte
	copy(k[:], m.Sum(nil))
	c, ok := l.counts[k]
	if !ok && len(l.counts) >= maxSources {
		return true
	}
	if c >= l.perMinute {
		return false
	}
	l.counts[k] = c + 1
	return true
}

// size is the number of tracked sources (tests).
func (l *sourceLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counts)
}

// limitedListener drops connections from sources over their limit before
// any handshake work is spent on them.
type limitedListener struct {
	net.Listener
	lim     *sourceLimiter
	refused func()
}

// Accept implements net.Listener.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok && !l.lim.allow(ta.IP) {
			_ = c.Close()
			if l.refused != nil {
				l.refused()
			}
			continue
		}
		return c, nil
	}
}
