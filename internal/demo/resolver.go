package demo

import (
	"context"
	"fmt"
	"net"

	"smessenger/internal/dnsres"
)

// outsideDNS is the relay's view of DNS in the demo: every domain's MX is
// the outside world's sink on loopback (the relay dials the MX host at
// relay.Config.Port, the sink's port). An IP literal as MX host keeps the
// system resolver out of it. Everything else does not exist.
type outsideDNS struct{ host string }

var _ dnsres.Resolver = outsideDNS{}

// LookupMX implements dnsres.Resolver.
func (o outsideDNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", dnsres.ErrTemporary, err)
	}
	return []*net.MX{{Host: o.host, Pref: 10}}, nil
}

// LookupTXT implements dnsres.Resolver.
func (o outsideDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	return nil, fmt.Errorf("%w: TXT %s", dnsres.ErrNotFound, name)
}

// LookupIPAddr implements dnsres.Resolver.
func (o outsideDNS) LookupIPAddr(_ context.Context, name string) ([]net.IPAddr, error) {
	return nil, fmt.Errorf("%w: A %s", dnsres.ErrNotFound, name)
}
