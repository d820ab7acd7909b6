package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"smessenger/internal/relay/mtasts"
)

// ErrSTSNoMatchingMX is reported (as a deferral) when a domain's MTA-STS
// policy is in enforce mode and none of its MX hosts matches the policy
// (RFC 8461 section 4.1). The mail waits: the policy or DNS may be fixed
// before the entry expires.
var ErrSTSNoMatchingMX = errors.New("relay: no MX host matches the MTA-STS policy")

// tlsPolicy is what delivery to one domain demands of TLS.
type tlsPolicy struct {
	domain   string
	required bool // verified STARTTLS or no delivery (RequireTLS, MTA-STS enforce)
	testing  bool // MTA-STS testing: deliver as usual, log what enforce would refuse
}

// dial opens the TCP connection, through Config.Dial when set.
func (r *Relay) dial(ctx context.Context, hostport string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	if r.cfg.Dial != nil {
		return r.cfg.Dial(ctx, "tcp", hostport)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", hostport)
}

// applySTS looks up domain's MTA-STS policy and applies it to the MX
// candidates (RFC 8461 section 5): in enforce mode only matching hosts
// stay and verified TLS becomes required; in testing mode every host stays
// and violations are logged. Without a usable policy (none published, or
// a DNS or HTTPS failure with nothing cached) hosts are returned as they
// are, which section 5 allows.
func (r *Relay) applySTS(ctx context.Context, hosts []string, tp *tlsPolicy) []string {
	if r.sts == nil {
		return hosts
	}
	p, err := r.sts.Lookup(ctx, tp.domain)
	if err != nil {
		// ErrNoRecord is the common case and may wrap resolver text that
		// names a DNS server's address: not logged.
		if !errors.Is(err, mtasts.ErrNoRecord) {
			r.log.Info("relay: MTA-STS policy unusable, delivering without it", "domain", tp.domain, "err", err)
		}
		return hosts
	}
	if p.Mode == mtasts.ModeNone {
		return hosts
	}
	enforce := p.Mode == mtasts.ModeEnforce
	var keep []string
	for _, hp := range hosts {
		h, _, _ := net.SplitHostPort(hp)
		switch {
		case p.Match(h):
			keep = append(keep, hp)
		case !enforce:
			r.log.Warn("relay: MTA-STS testing-mode violation", "domain", tp.domain, "mx", h, "reason", "MX not in policy")
			keep = append(keep, hp)
		}
	}
	if enforce {
		tp.required = true
	} else {
		tp.testing = true
	}
	return keep
}

// reportUnverified returns a VerifyConnection hook for MTA-STS testing
// mode: the handshake goes on whatever the certificate (opportunistic TLS
// still beats plaintext), but one that enforce mode would refuse is logged.
func (r *Relay) reportUnverified(host, domain string, roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			r.log.Warn("relay: MTA-STS testing-mode violation", "domain", domain, "mx", host, "reason", "no certificate")
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
		if err != nil {
			r.log.Warn("relay: MTA-STS testing-mode violation", "domain", domain, "mx", host, "reason", "certificate does not verify")
		}
		return nil
	}
}
