// Package dnsres is the DNS the mail code uses: a small Resolver interface
// with a net.Resolver implementation for production and a static, in-memory
// implementation for tests and configured routes. The MX checks SPF (RFC
// 7208), DKIM (RFC 6376) and DMARC (RFC 7489) through it, and the relay looks
// up MX records (RFC 5321 section 5.1) through it, so tests point both at
// loopback without touching real DNS.
package dnsres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
)

// ErrNotFound is returned (wrapped) when a name has no record of the asked
// type: NXDOMAIN or NODATA. SPF and DMARC treat it as "no policy", unlike a
// temporary failure.
var ErrNotFound = errors.New("dnsres: no such record")

// ErrTemporary is returned (wrapped) when a lookup failed for a reason that
// may go away (timeout, SERVFAIL); callers answer 4xx and retry later.
var ErrTemporary = errors.New("dnsres: temporary lookup failure")

// Resolver answers the DNS questions mail needs. Names may carry a trailing
// dot; implementations compare them case-insensitively. Every method returns
// an error wrapping ErrNotFound or ErrTemporary on failure.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupIPAddr(ctx context.Context, name string) ([]net.IPAddr, error)
}

// Net is the production Resolver over a *net.Resolver (nil: the default).
type Net struct{ R *net.Resolver }

var _ Resolver = Net{}

func (n Net) r() *net.Resolver {
	if n.R != nil {
		return n.R
	}
	return net.DefaultResolver
}

// LookupMX implements Resolver.
func (n Net) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, err := n.r().LookupMX(ctx, name)
	return mx, classify(err)
}

// LookupTXT implements Resolver.
func (n Net) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, err := n.r().LookupTXT(ctx, name)
	return txt, classify(err)
}

// LookupIPAddr implements Resolver.
func (n Net) LookupIPAddr(ctx context.Context, name string) ([]net.IPAddr, error) {
	ips, err := n.r().LookupIPAddr(ctx, name)
	return ips, classify(err)
}

// classify maps the standard library's DNS errors onto our two sentinels so
// callers need not know about *net.DNSError.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return fmt.Errorf("%w: %s", ErrNotFound, de.Name)
	}
	return fmt.Errorf("%w: %v", ErrTemporary, err)
}

// Static is an in-memory Resolver: a zone the tests (or a config file of
// routes) fill in. It is safe for concurrent use. Names not present give
// ErrNotFound; names listed in Fail give ErrTemporary.
type Static struct {
	mu   sync.RWMutex
	mx   map[string][]*net.MX
	txt  map[string][]string
	ip   map[string][]net.IPAddr
	fail map[string]bool
}

var _ Resolver = (*Static)(nil)

// NewStatic returns an empty zone.
func NewStatic() *Static {
	return &Static{
		mx:   map[string][]*net.MX{},
		txt:  map[string][]string{},
		ip:   map[string][]net.IPAddr{},
		fail: map[string]bool{},
	}
}

// Canonical lower-cases a DNS name and strips one trailing dot.
func Canonical(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// AddMX adds an MX record.
func (s *Static) AddMX(name, host string, pref uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := Canonical(name)
	s.mx[n] = append(s.mx[n], &net.MX{Host: host, Pref: pref})
	sort.SliceStable(s.mx[n], func(i, j int) bool { return s.mx[n][i].Pref < s.mx[n][j].Pref })
}

// AddTXT adds a TXT record (one string, already joined).
func (s *Static) AddTXT(name, txt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := Canonical(name)
	s.txt[n] = append(s.txt[n], txt)
}

// SetTXT replaces the TXT records of name.
func (s *Static) SetTXT(name string, txt ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[Canonical(name)] = append([]string(nil), txt...)
}

// AddIP adds an A or AAAA record; ip must parse.
func (s *Static) AddIP(name, ip string) error {
	p := net.ParseIP(ip)
	if p == nil {
		return fmt.Errorf("dnsres: bad IP address %q", ip)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := Canonical(name)
	s.ip[n] = append(s.ip[n], net.IPAddr{IP: p})
	return nil
}

// SetFail makes every lookup of name fail temporarily (or stop failing).
func (s *Static) SetFail(name string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[Canonical(name)] = fail
}

// LookupMX implements Resolver.
func (s *Static) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := Canonical(name)
	if err := s.check(ctx, n); err != nil {
		return nil, err
	}
	if len(s.mx[n]) == 0 {
		return nil, fmt.Errorf("%w: MX %s", ErrNotFound, n)
	}
	out := make([]*net.MX, len(s.mx[n]))
	for i, m := range s.mx[n] {
		c := *m
		out[i] = &c
	}
	return out, nil
}

// LookupTXT implements Resolver.
func (s *Static) LookupTXT(ctx context.Context, name string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := Canonical(name)
	if err := s.check(ctx, n); err != nil {
		return nil, err
	}
	if len(s.txt[n]) == 0 {
		return nil, fmt.Errorf("%w: TXT %s", ErrNotFound, n)
	}
	return append([]string(nil), s.txt[n]...), nil
}

// LookupIPAddr implements Resolver.
func (s *Static) LookupIPAddr(ctx context.Context, name string) ([]net.IPAddr, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := Canonical(name)
	if err := s.check(ctx, n); err != nil {
		return nil, err
	}
	if len(s.ip[n]) == 0 {
		return nil, fmt.Errorf("%w: A %s", ErrNotFound, n)
	}
	return append([]net.IPAddr(nil), s.ip[n]...), nil
}

func (s *Static) check(ctx context.Context, n string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrTemporary, err)
	}
	if s.fail[n] {
		return fmt.Errorf("%w: %s", ErrTemporary, n)
	}
	return nil
}
