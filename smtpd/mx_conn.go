package smtpd

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// errBareNewlineConn is what a wrapped connection's Read returns after it
// found a bare CR or LF in the command stream and hung up.
var errBareNewlineConn = errors.New("smtpd: bare CR or LF in command stream")

// errRateLimited is returned by session methods when a source sends too
// many commands; go-smtp writes it as is.
var errRateLimited = &smtp.SMTPError{
	Code:         421,
	EnhancedCode: smtp.EnhancedCode{4, 7, 0},
	Message:      "Too many commands, slow down",
}

// mxSource identifies a connection's source for rate limiting: a keyed hash
// of its IP address under a key that lives only in memory and rotates, so
// the address itself is never kept, even in memory state.
type mxSource [16]byte

// mxListener wraps accepted connections in mxConn and enforces the
// per-source connection limit before go-smtp sees them.
type mxListener struct {
	net.Listener
	mx *MX
}

func (l *mxListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := l.mx.limiter.source(c.RemoteAddr())
		if !l.mx.limiter.acquire(src) {
			// Answer without blocking the accept loop on a slow peer.
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write([]byte("421 4.7.0 Too many connections, try again later\r\n"))
				_ = c.Close()
			}()
			continue
		}
		mc := &mxConn{Conn: c, mx: l.mx, src: src}
		mc.checking.Store(true)
		return mc, nil
	}
}

// mxConn checks the plaintext stream for bare CR/LF (SMTP smuggling, RFC
// 5321 section 2.3.8) until STARTTLS; after it, go-smtp reads through the
// TLS layer and the session checks DATA itself.
type mxConn struct {
	net.Conn
	mx       *MX
	src      mxSource
	checking atomic.Bool
	pendCR   bool // last byte read was CR; its LF may come in the next read
	once     sync.Once

	// Read-ahead during DATA on a plaintext connection. go-smtp reads
	// through a 4 KiB bufio.Reader, so a 10 KB message costs three read
	// system calls and a 10 MB one 2,560; with a pooled 64 KiB buffer in
	// between, one call takes whatever the socket holds. Only the
	// connection's goroutine reads, so these need no lock. The buffer is
	// held only while a message is read (idle connections keep none).
	ahead     *[]byte
	aheadData []byte // unread part of *ahead
	aheadErr  error  // error of the read that filled it, returned once drained
	readAhead bool
}

// mxAheadSize is the read-ahead buffer's size.
const mxAheadSize = 64 << 10

var mxAheadBuffers = sync.Pool{New: func() any {
	b := make([]byte, mxAheadSize)
	return &b
}}

// setReadAhead turns read-ahead on for the DATA that follows, or off after
// it; bytes already read ahead (a pipelined next command) are still
// served, and the buffer goes back to the pool once they are.
func (c *mxConn) setReadAhead(on bool) {
	c.readAhead = on
	c.releaseAhead()
}

func (c *mxConn) releaseAhead() {
	if c.ahead != nil && len(c.aheadData) == 0 && !c.readAhead {
		mxAheadBuffers.Put(c.ahead)
		c.ahead = nil
	}
}

func (c *mxConn) Read(b []byte) (int, error) {
	if len(c.aheadData) > 0 {
		n := copy(b, c.aheadData)
		c.aheadData = c.aheadData[n:]
		c.releaseAhead()
		return n, nil
	}
	if err := c.aheadErr; err != nil {
		c.aheadErr = nil
		return 0, err
	}
	if !c.readAhead || len(b) >= mxAheadSize {
		c.releaseAhead()
		return c.readChecked(b)
	}
	if c.ahead == nil {
		c.ahead = mxAheadBuffers.Get().(*[]byte)
	}
	n, err := c.readChecked(*c.ahead)
	c.aheadData = (*c.ahead)[:n]
	c.aheadErr = err
	if n == 0 {
		c.aheadErr = nil
		return 0, err
	}
	m := copy(b, c.aheadData)
	c.aheadData = c.aheadData[m:]
	return m, nil
}

// readChecked reads from the socket and, before STARTTLS, refuses bare CR
// or LF in what it read.
func (c *mxConn) readChecked(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.checking.Load() {
		if !c.scan(b[:n]) {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Conn.Write([]byte("521 5.5.2 Bare CR or LF not allowed, closing\r\n"))
			_ = c.Close()
			return 0, errBareNewlineConn
		}
	}
	return n, err
}

// scan updates the CR state over p and reports whether p was clean. A CR
// at the end of p is legal only if the next read starts with its LF.
func (c *mxConn) scan(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if c.pendCR {
		if p[0] != '\n' {
			return false
		}
		p = p[1:]
		c.pendCR = false
	}
	endCR := len(p) > 0 && p[len(p)-1] == '\r'
	if endCR {
		p = p[:len(p)-1]
	}
	if mxCheckNewlines(p) != nil {
		return false
	}
	c.pendCR = endCR
	return true
}

// tlsReady is go-smtp's reply to STARTTLS; once it is written the next
// bytes are a TLS handshake, which our plaintext scan must not see. go-smtp
// drops whatever was pipelined behind STARTTLS (its reader is rebuilt on
// the TLS conn), which a raw-socket test proves.
var tlsReady = []byte("220 2.0.0 Ready to start TLS")

func (c *mxConn) Write(b []byte) (int, error) {
	if c.checking.Load() && bytes.HasPrefix(b, tlsReady) {
		c.checking.Store(false)
	}
	return c.Conn.Write(b)
}

func (c *mxConn) Close() error {
	c.once.Do(func() { c.mx.limiter.release(c.src) })
	return c.Conn.Close()
}

// mxConnOf finds our wrapper under a possible TLS layer.
func mxConnOf(c net.Conn) *mxConn {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	mc, _ := c.(*mxConn)
	return mc
}

// mxLimiter keeps per-source counters in memory only.
type mxLimiter struct {
	maxConns, perMinute int
	now                 func() time.Time

	mu      sync.Mutex
	key     [32]byte
	keyTime time.Time
	conns   map[mxSource]int
	cmds    map[mxSource]*mxWindow
}

type mxWindow struct {
	start time.Time
	n     int
}

// mxKeyLifetime is how long one hashing key lives; rotating it means even
// the hashes cannot be linked over long periods.
const mxKeyLifetime = time.Hour

func newMXLimiter(maxConns, perMinute int, now func() time.Time) *mxLimiter {
	l := &mxLimiter{maxConns: maxConns, perMinute: perMinute, now: now,
		conns: map[mxSource]int{}, cmds: map[mxSource]*mxWindow{}}
	l.rotate(now())
	return l
}

func (l *mxLimiter) rotate(t time.Time) {
	_, _ = rand.Read(l.key[:])
	l.keyTime = t
	// Command windows are keyed by the old key's hashes; drop them. Open
	// connections keep the hash they were counted under until they close.
	l.cmds = map[mxSource]*mxWindow{}
}

// source hashes the IP part of addr (not the port).
func (l *mxLimiter) source(addr net.Addr) mxSource {
	var ip []byte
	if ta, ok := addr.(*net.TCPAddr); ok {
		ip = ta.IP.To16()
	} else if addr != nil {
		ip = []byte(addr.String())
	}
	l.mu.Lock()
	if l.now().Sub(l.keyTime) > mxKeyLifetime {
		l.rotate(l.now())
	}
	h := hmac.New(sha256.New, l.key[:])
	l.mu.Unlock()
	h.Write(ip)
	var s mxSource
	copy(s[:], h.Sum(nil))
	return s
}

func (l *mxLimiter) acquire(s mxSource) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[s] >= l.maxConns {
		return false
	}
	l.conns[s]++
	return true
}

func (l *mxLimiter) release(s mxSource) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[s] <= 1 {
		delete(l.conns, s)
		return
	}
	l.conns[s]--
}

// command counts one command from s and reports whether it is allowed.
func (l *mxLimiter) command(s mxSource) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.cmds[s]
	if w == nil || now.Sub(w.start) >= time.Minute {
		if len(l.cmds) > 100000 {
			// Bound memory under a flood of sources; old windows are stale.
			l.cmds = map[mxSource]*mxWindow{}
		}
		w = &mxWindow{start: now}
		l.cmds[s] = w
	}
	w.n++
	return w.n <= l.perMinute
}
