package channel

import (
	"context"
	"net"
)

type connKey struct{}

// ConnContext is meant for http.Server.ConnContext: it stores the *Conn in
// the context without running the handshake (net/http calls it before the
// first read), so PeerFromContext and ConnFromContext can find it, and it
// makes the conn's Context a child of ctx (the server's BaseContext).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*Conn); ok {
		ctx = context.WithValue(ctx, connKey{}, cc)
		cc.contextUnder(ctx)
	}
	return ctx
}

// ConnFromContext returns the server-side *Conn of a request's context, or
// nil.
func ConnFromContext(ctx context.Context) *Conn {
	c, ok := ctx.Value(connKey{}).(*Conn)
	if !ok || c.server == nil {
		return nil
	}
	return c
}

// PeerFromContext returns the authenticated device of the request's
// connection, completing the handshake if it has not run yet. ok is false if
// the context holds no server-side *Conn or the handshake failed.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	c, ok := ctx.Value(connKey{}).(*Conn)
	if !ok || c.server == nil {
		return Peer{}, false
	}
	if err := c.Handshake(ctx); err != nil {
		return Peer{}, false
	}
	return c.Peer(), true
}
