package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/internal/dnsres"
	"smessenger/internal/store"
)

type outcomeKind int

const (
	outcomeDeferred outcomeKind = iota
	outcomeDelivered
	outcomeFailed
)

// outcome is one recipient's result of one attempt. text is the remote's
// reply or a generic connection error; it never holds an IP address.
type outcome struct {
	kind outcomeKind
	text string
}

// ErrTLSRequired is reported (as a deferral) when a domain that requires
// TLS offered no STARTTLS or a certificate that did not verify.
var ErrTLSRequired = errors.New("relay: TLS required but not available")

// hosts returns the "host:port" candidates for domain: a configured route
// (the domain's own, else the "*" smart host; routed is then true), else
// the MX hosts by preference, else the domain itself (RFC 5321 section 5.1
// implicit MX).
func (r *Relay) hosts(ctx context.Context, domain string) (hosts []string, routed bool, err error) {
	if rt, ok := r.cfg.Routes[domain]; ok {
		return []string{rt}, true, nil
	}
	if rt, ok := r.cfg.Routes["*"]; ok {
		return []string{rt}, true, nil
	}
	mxs, err := r.cfg.Resolver.LookupMX(ctx, domain)
	if errors.Is(err, dnsres.ErrNotFound) {
		return []string{net.JoinHostPort(domain, r.cfg.Port)}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	var out []string
	for _, mx := range mxs {
		h := dnsres.Canonical(mx.Host)
		if h == "" {
			// Null MX (RFC 7505): the domain accepts no mail.
			return nil, false, errNullMX
		}
		out = append(out, net.JoinHostPort(h, r.cfg.Port))
	}
	return out, false, nil
}

var errNullMX = errors.New("relay: domain accepts no mail (null MX)")

// deliverDomain tries each host of domain until one gives an answer for the
// recipients; a connection-level failure moves on to the next host.
func (r *Relay) deliverDomain(ctx context.Context, domain string, e store.QueueEntry, payload []byte) map[string]outcome {
	var rcpts []string
	for _, rc := range e.Recipients {
		if !rc.Done && domainOf(rc.Address) == domain {
			rcpts = append(rcpts, store.NormalizeAddress(rc.Address))
		}
	}
	all := func(o outcome) map[string]outcome {
		m := map[string]outcome{}
		for _, a := range rcpts {
			m[a] = o
		}
		return m
	}
	hosts, routed, err := r.hosts(ctx, domain)
	if errors.Is(err, errNullMX) {
		return all(outcome{outcomeFailed, "556 5.1.10 recipient domain accepts no mail"})
	}
	if err != nil {
		return all(outcome{outcomeDeferred, "DNS lookup failed for " + domain})
	}
	tp := tlsPolicy{domain: domain, required: r.requireTLS[domain]}
	if !routed {
		// MTA-STS constrains delivery to the domain's MX hosts; a
		// configured route is the operator's choice and is not checked.
		hosts = r.applySTS(ctx, hosts, &tp)
		if len(hosts) == 0 {
			return all(outcome{outcomeDeferred, ErrSTSNoMatchingMX.Error()})
		}
	}
	last := outcome{outcomeDeferred, "no host reachable"}
	for _, h := range hosts {
		res, err := r.session(ctx, h, tp, e.From, rcpts, payload)
		if err == nil {
			return res
		}
		last = outcome{outcomeDeferred, err.Error()}
	}
	return all(last)
}

// session runs one SMTP transaction. A non-nil error means the host gave
// no usable answer (try the next one); otherwise the map has one outcome
// per recipient.
func (r *Relay) session(ctx context.Context, hostport string, tp tlsPolicy, from string, rcpts []string, payload []byte) (map[string]outcome, error) {
	c, err := r.connect(ctx, hostport, tp)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		return r.allOrRetry(err, rcpts)
	}
	res := map[string]outcome{}
	var accepted []string
	for _, a := range rcpts {
		if err := c.Rcpt(a, nil); err != nil {
			res[a] = replyOutcome(err)
			continue
		}
		accepted = append(accepted, a)
	}
	if len(accepted) == 0 {
		_ = c.Quit()
		return res, nil
	}
	w, err := c.Data()
	if err == nil {
		if _, err = w.Write(payload); err == nil {
			err = w.Close()
		}
	}
	final := outcome{outcomeDelivered, "250 accepted"}
	if err != nil {
		final = replyOutcome(err)
	}
	for _, a := range accepted {
		res[a] = final
	}
	_ = c.Quit()
	return res, nil
}

func (r *Relay) allOrRetry(err error, rcpts []string) (map[string]outcome, error) {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return nil, errors.New("relay: connection failed during MAIL")
	}
	o := replyOutcome(err)
	m := map[string]outcome{}
	for _, a := range rcpts {
		m[a] = o
	}
	return m, nil
}

// replyOutcome classifies a remote reply: 5xx is permanent, the rest
// (4xx and broken connections) temporary.
func replyOutcome(err error) outcome {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		text := fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], sanitize(se.Message))
		if se.Code >= 500 {
			return outcome{outcomeFailed, text}
		}
		return outcome{outcomeDeferred, text}
	}
	return outcome{outcomeDeferred, "connection lost"}
}

// sanitize keeps remote text printable and short for DSNs and logs.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// connect dials and greets, upgrading with STARTTLS when offered. go-smtp's
// client rebuilds its reader on the TLS connection, so any line a hostile
// server sent after its 220 to STARTTLS is discarded, never read as a
// reply (TestRelaySTARTTLSInjection proves it).
func (r *Relay) connect(ctx context.Context, hostport string, tp tlsPolicy) (*smtp.Client, error) {
	required := tp.required
	host, _, _ := net.SplitHostPort(hostport)
	cfg := r.tlsConfig(host, tp)
	conn, err := r.dial(ctx, hostport)
	if err != nil {
		return nil, errors.New("relay: connection failed")
	}
	c, err := smtp.NewClientStartTLS(conn, cfg)
	if err == nil {
		// The EHLO after STARTTLS carries our name (the one before it went
		// out as "localhost", which go-smtp does not let us change).
		if err = c.Hello(r.cfg.Hostname); err != nil {
			c.Close()
			return nil, classifyConnErr(err, "TLS handshake or EHLO failed")
		}
		return c, nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 400 && !strings.Contains(strings.ToUpper(se.Message), "STARTTLS") {
		// The greeting or EHLO itself was refused.
		return nil, classifyConnErr(err, "greeting refused")
	}
	if required {
		return nil, ErrTLSRequired
	}
	if tp.testing {
		r.log.Warn("relay: MTA-STS testing-mode violation", "domain", tp.domain, "mx", host, "reason", "no STARTTLS")
	}
	// No STARTTLS offered (or it failed): opportunistic, so go plaintext on
	// a fresh connection, as RFC 7435 allows.
	conn, err = r.dial(ctx, hostport)
	if err != nil {
		return nil, errors.New("relay: connection failed")
	}
	c = smtp.NewClient(conn)
	c.CommandTimeout = 5 * time.Minute
	if err := c.Hello(r.cfg.Hostname); err != nil {
		c.Close()
		return nil, classifyConnErr(err, "greeting failed")
	}
	return c, nil
}

func classifyConnErr(err error, generic string) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Errorf("relay: %d %s", se.Code, sanitize(se.Message))
	}
	return errors.New("relay: " + generic)
}

// tlsConfig verifies certificates only where TLS is required: elsewhere an
// unverified TLS session still beats plaintext (RFC 7435 opportunistic
// security), and refusing it would push mail to plaintext.
func (r *Relay) tlsConfig(host string, tp tlsPolicy) *tls.Config {
	var cfg *tls.Config
	if r.cfg.TLS != nil {
		cfg = r.cfg.TLS.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = host
	cfg.MinVersion = tls.VersionTLS12
	if !tp.required {
		cfg.InsecureSkipVerify = true
		if tp.testing {
			cfg.VerifyConnection = r.reportUnverified(host, tp.domain, cfg.RootCAs)
		}
	}
	return cfg
}
