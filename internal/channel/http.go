package channel

import (
	"context"
	"net"
)

type connKey struct{}

// ConnContext is meant for http.Server.ConnContext: it stores the *Conn in
// the context without running the handshake (net/http calls it before the
// first read), so PeerFromContext can find it.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
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
