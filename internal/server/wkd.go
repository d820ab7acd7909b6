package server

import (
	"context"
	"net/http"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// wkdHandler publishes users' public keys for the node's domains through
// pgp's WKD handler. Only keys of this server's own users are served.
func (n *Node) wkdHandler() http.Handler {
	lookup := func(ctx context.Context, address string) ([]byte, error) {
		id, err := n.st.LookupAddress(ctx, store.NormalizeAddress(address))
		if err != nil {
			return nil, err
		}
		return n.st.PublicKey(ctx, id)
	}
	return pgp.WKDHandler(lookup, n.cfg.Domains)
}
