package demo

import (
	"context"

	"smessenger/bridge"
	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/store"
)

// apiServer adapts *api.Client to bridge.Server: the two packages declare
// their own WhoAmI and Delivery types (bridge must not import the server
// side), so the command line converts between them.
type apiServer struct{ *api.Client }

var (
	_ bridge.Server        = apiServer{}
	_ bridge.CopyDeliverer = apiServer{}
)

// WhoAmI implements bridge.Server.
func (s apiServer) WhoAmI(ctx context.Context) (bridge.WhoAmI, error) {
	w, err := s.Client.WhoAmI(ctx)
	return bridge.WhoAmI(w), err
}

// Deliver implements bridge.Server.
func (s apiServer) Deliver(ctx context.Context, ds []bridge.Delivery) error {
	out := make([]api.Delivery, len(ds))
	for i, d := range ds {
		out[i] = api.Delivery(d)
	}
	return s.Client.Deliver(ctx, out)
}

// DeliverWithCopy implements bridge.CopyDeliverer.
func (s apiServer) DeliverWithCopy(ctx context.Context, ds []bridge.Delivery, mailbox string, cp store.NewMessage) (store.MessageMeta, error, error) {
	return s.Client.DeliverWithCopy(ctx, ds, mailbox, cp)
}

// NewAPIServer returns the bridge's client for the server at addr over the
// TLS + Noise channel cfg; it is the NewServer of bridge.LoginConfig and
// bridge.OpenConfig.
func NewAPIServer(addr string, cfg channel.ClientConfig) bridge.Server {
	return apiServer{api.NewClient(addr, cfg)}
}

// fixedAddr returns a NewServer that dials addr whatever address the vault
// recorded: the demo owns both ends, and its server's port may change
// between runs.
func fixedAddr(addr func() string) func(string, channel.ClientConfig) bridge.Server {
	return func(_ string, cfg channel.ClientConfig) bridge.Server {
		return NewAPIServer(addr(), cfg)
	}
}
