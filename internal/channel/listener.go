package channel

import (
	"crypto/tls"
	"net"
	"sync"
)

// Listener accepts channel connections and keeps a registry of live ones by
// device key, so a revoked device can be cut off at once (CloseDevice).
type Listener struct {
	inner net.Listener
	cfg   ServerConfig
	tls   *tls.Config // serverTLS(cfg.TLS), shared by every conn
	mu    sync.Mutex
	live  map[string]map[*Conn]struct{} // device key → open conns
}

var _ net.Listener = (*Listener)(nil)

// Listen wraps inner. Accept returns a *Conn without running the handshake,
// so one slow client cannot hold up the others; the dynamic type of the
// result is *Listener (see NewListener for the typed form).
func Listen(inner net.Listener, cfg ServerConfig) net.Listener {
	return NewListener(inner, cfg)
}

// NewListener is Listen returning the concrete type, for CloseDevice.
func NewListener(inner net.Listener, cfg ServerConfig) *Listener {
	return &Listener{inner: inner, cfg: cfg, tls: serverTLS(cfg.TLS), live: make(map[string]map[*Conn]struct{})}
}

// Accept implements net.Listener; the net.Conn is a server-side *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	raw, err := l.inner.Accept()
	if err != nil {
		return nil, err
	}
	c := newServerTLS(raw, &l.cfg, l.tls)
	c.ln = l
	return c, nil
}

// Close closes the inner listener. Open conns stay open, as with net.
func (l *Listener) Close() error { return l.inner.Close() }

// Addr implements net.Listener (the server's own address).
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// CloseDevice closes every open conn (including one still in its handshake)
// of the device with this static key and returns how many it closed. Call it
// after the store has revoked the key, so a concurrent handshake is either
// closed here or refused by Authorize.
func (l *Listener) CloseDevice(deviceKey []byte) int {
	l.mu.Lock()
	set := l.live[string(deviceKey)]
	delete(l.live, string(deviceKey))
	l.mu.Unlock()
	for c := range set {
		_ = c.Close()
	}
	return len(set)
}

// CloseAll closes every registered conn and returns how many it closed: a
// server that is stopping uses it on connections it no longer tracks (such
// as hijacked ones) once its grace period is over.
func (l *Listener) CloseAll() int {
	l.mu.Lock()
	live := l.live
	l.live = make(map[string]map[*Conn]struct{})
	l.mu.Unlock()
	n := 0
	for _, set := range live {
		for c := range set {
			_ = c.Close()
			n++
		}
	}
	return n
}

// Live returns the number of registered conns (those past message 1).
func (l *Listener) Live() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, set := range l.live {
		n += len(set)
	}
	return n
}

// track registers c under its device key. A conn closed meanwhile is not
// registered: Close sets closed before it takes the lock to forget.
func (l *Listener) track(c *Conn, key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed.Load() {
		return
	}
	c.deviceKey = string(key)
	set := l.live[c.deviceKey]
	if set == nil {
		set = make(map[*Conn]struct{})
		l.live[c.deviceKey] = set
	}
	set[c] = struct{}{}
}

// forget removes c from the registry.
func (l *Listener) forget(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.live[c.deviceKey]
	if set == nil {
		return
	}
	delete(set, c)
	if len(set) == 0 {
		delete(l.live, c.deviceKey)
	}
}
