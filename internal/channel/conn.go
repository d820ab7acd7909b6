package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
)

// Sentinel errors, for errors.Is.
var (
	// ErrHandshake: the TLS or Noise handshake failed (wrong server key, not a
	// sMessenger peer, timeout, malformed message, refused device).
	ErrHandshake = errors.New("channel: handshake failed")
	// ErrUnauthorized: the server refused this device's key or enrolment
	// token. Errors carrying it also match ErrHandshake.
	ErrUnauthorized = errors.New("channel: device not authorized")
	// ErrFrame: a transport frame was malformed or did not authenticate
	// (replayed, reordered, dropped or altered); the connection is closed.
	ErrFrame = errors.New("channel: bad frame")
)

// Conn is one end of the channel. It implements net.Conn: Read returns
// decrypted bytes, Write encrypts them into frames. A Read and a Write may run
// concurrently; concurrent Reads (or Writes) are serialised. The handshake
// runs on the first Read or Write unless Handshake was called.
type Conn struct {
	raw    net.Conn // TCP (or proxy) conn; handshake deadlines are set here
	conn   net.Conn // TLS over raw; raw itself in the test-only plaintext mode
	client *ClientConfig
	server *ServerConfig
	ln     *Listener // set for conns from a Listener, for CloseDevice

	hsMu   sync.Mutex
	hsDone atomic.Bool // set after hsErr and peer are final
	hsErr  error
	peer   Peer

	rmu     sync.Mutex
	fr      frameReader
	recv    *noise.CipherState
	pending []byte // decrypted bytes not yet returned; aliases fr's buffer
	rerr    error  // sticky: once reading failed, it keeps failing

	wmu  sync.Mutex
	send *noise.CipherState
	werr error // sticky: a failed write may have left half a frame

	dlMu            sync.Mutex
	readDL, writeDL time.Time // the caller's deadlines, restored after the handshake

	ctxMu  sync.Mutex
	ctx    context.Context // see Context; made on first use
	cancel context.CancelFunc

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	deviceKey string // set by Listener.track, under the listener's lock
}

var _ net.Conn = (*Conn)(nil)

func newConn(raw, conn net.Conn) *Conn {
	c := &Conn{raw: raw, conn: conn}
	c.fr.r = conn
	return c
}

// Handshake runs the TLS and Noise handshakes if they have not run yet and
// returns their result; later calls return the same result. It is bounded by
// the configured HandshakeTimeout and by ctx. On failure the connection is
// closed. Errors match ErrHandshake; also ErrUnauthorized when the server
// refused the device, and context.DeadlineExceeded (or ctx's error) when the
// timeout or ctx ended it.
func (c *Conn) Handshake(ctx context.Context) error {
	if c.hsDone.Load() {
		return c.hsErr
	}
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsDone.Load() {
		return c.hsErr
	}
	err := c.runHandshake(ctx)
	c.hsErr = err
	c.hsDone.Store(true)
	return err
}

// runHandshake puts one deadline over the whole handshake, so a peer that
// trickles bytes cannot stretch it, and turns ctx cancellation into that
// deadline firing early.
func (c *Conn) runHandshake(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.handshakeTimeout())
	defer cancel()
	dl, _ := ctx.Deadline()
	_ = c.raw.SetDeadline(dl)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.raw.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	var err error
	if c.server != nil {
		err = c.serverHandshake(ctx)
	} else {
		err = c.clientHandshake(ctx)
	}
	if !stop() && err == nil {
		<-fired // the past deadline was set; restoring below undoes it
	}
	if err != nil {
		_ = c.Close()
		err = c.scrub(err)
		if !errors.Is(err, ErrHandshake) {
			err = fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		// The socket deadline and ctx's timer fire at the same instant in
		// either order; a timeout is reported as DeadlineExceeded both ways.
		cause := ctx.Err()
		if cause == nil && isTimeout(err) {
			cause = context.DeadlineExceeded
		}
		if cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		return err
	}
	c.dlMu.Lock()
	_ = c.raw.SetReadDeadline(c.readDL)
	_ = c.raw.SetWriteDeadline(c.writeDL)
	c.dlMu.Unlock()
	return nil
}

func (c *Conn) handshakeTimeout() time.Duration {
	d := time.Duration(0)
	if c.server != nil {
		d = c.server.HandshakeTimeout
	} else if c.client != nil {
		d = c.client.HandshakeTimeout
	}
	if d <= 0 {
		d = DefaultHandshakeTimeout
	}
	return d
}

// DefaultHandshakeTimeout bounds a handshake when the config leaves it zero.
const DefaultHandshakeTimeout = 10 * time.Second

// Peer returns the device the server authenticated. It is the zero Peer on
// the client side and before the handshake has succeeded.
func (c *Conn) Peer() Peer {
	if !c.hsDone.Load() || c.hsErr != nil {
		return Peer{}
	}
	return c.peer
}

// Read implements net.Conn. A frame that fails to authenticate closes the
// connection and returns ErrFrame; none of its bytes are returned.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, c.rerr
	}
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		body, err := c.fr.next(tagSize)
		if err == nil {
			c.pending, err = openFrame(c.recv, body)
		}
		if err != nil {
			if isTimeout(err) { // the stream is intact; a later Read resumes it
				return 0, c.scrub(err)
			}
			c.rerr = c.scrub(err)
			c.fr.abandon()
			if err != io.EOF { // a clean EOF leaves closing to the caller
				_ = c.Close()
			}
			return 0, c.rerr
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.fr.release()
	}
	return n, nil
}

// Write implements net.Conn, splitting p into frames of at most 65519
// plaintext bytes. After a failed write every later write fails too, because
// part of a frame may have been sent.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxPlain)]
		bp, frame, err := sealFrame(c.send, chunk)
		if err == nil {
			_, err = c.conn.Write(frame)
			framePool.Put(bp)
		}
		if err != nil {
			c.werr = c.scrub(err)
			return n, c.werr
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// Close closes the TLS connection (and the one under it) and removes the
// conn from its listener's registry. It is safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.ctxMu.Lock()
		if c.cancel != nil {
			c.cancel()
		}
		c.ctxMu.Unlock()
		if c.ln != nil {
			c.ln.forget(c)
		}
		c.closeErr = c.scrub(c.conn.Close())
	})
	return c.closeErr
}

// Context returns a context that ends when the connection is closed (by
// either side's Close, a failed frame, or CloseDevice on revocation) or when
// the context it is served under ends: for server conns handed to an
// http.Server through ConnContext, that is the server's BaseContext. A
// handler that outlives its request, such as an event stream running on a
// hijacked connection, waits on it.
func (c *Conn) Context() context.Context {
	return c.contextUnder(context.Background())
}

// contextUnder makes the conn's context as a child of parent on first use.
func (c *Conn) contextUnder(parent context.Context) context.Context {
	c.ctxMu.Lock()
	defer c.ctxMu.Unlock()
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(parent)
		if c.closed.Load() { // Close ran before there was a context to end
			c.cancel()
		}
	}
	return c.ctx
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr implements net.Conn. On the server side it is a placeholder,
// never the device's IP address, so that no log line or record built from it
// can hold one (DESIGN.md promise 6).
func (c *Conn) RemoteAddr() net.Addr {
	if c.server != nil {
		return hiddenAddr{}
	}
	return c.conn.RemoteAddr()
}

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.readDL, c.writeDL = t, t
	return c.scrub(c.conn.SetDeadline(t))
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.readDL = t
	return c.scrub(c.conn.SetReadDeadline(t))
}

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.writeDL = t
	return c.scrub(c.conn.SetWriteDeadline(t))
}

// scrub removes network addresses from server-side errors: a *net.OpError
// prints both ends of the connection, and server errors end up in logs.
// The inner error is kept, so timeouts still satisfy net.Error.Timeout and
// errors.Is(err, os.ErrDeadlineExceeded).
func (c *Conn) scrub(err error) error {
	if err == nil || c.server == nil {
		return err
	}
	var op *net.OpError
	if errors.As(err, &op) {
		if err == error(op) {
			return op.Err
		}
		return fmt.Errorf("channel: %s: %w", op.Op, op.Err)
	}
	return err
}

// hiddenAddr stands in for a device's network address.
type hiddenAddr struct{}

func (hiddenAddr) Network() string { return "channel" }
func (hiddenAddr) String() string  { return "device" }
