package channel

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/proxy"
)

// Dial connects to addr ("host:port"), through cfg.Proxy if set, and runs
// the TLS and Noise handshakes. With a proxy the host name is sent to the
// proxy unresolved (SOCKS5 domain-name address type), so nothing leaks to
// the local resolver and .onion addresses work.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Conn, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("channel: bad server address %q: %w", addr, err)
	}
	raw, err := dialRaw(ctx, addr, cfg.Proxy)
	if err != nil {
		return nil, err
	}
	c := newClient(raw, &cfg, host)
	if err := c.Handshake(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// dialRaw opens the TCP connection, directly or through a SOCKS5 proxy.
func dialRaw(ctx context.Context, addr, proxyURL string) (net.Conn, error) {
	if proxyURL == "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("channel: dial %s: %w", addr, err)
		}
		return c, nil
	}
	u, err := url.Parse(proxyURL)
	if err != nil || (u.Scheme != "socks5" && u.Scheme != "socks5h") || u.Host == "" {
		return nil, fmt.Errorf("channel: proxy must be socks5://host:port, got %q", redactURL(proxyURL))
	}
	d, err := proxy.FromURL(u, proxy.Direct)
	if err != nil {
		return nil, fmt.Errorf("channel: proxy %s: %w", u.Redacted(), err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok { // x/net's SOCKS5 dialer always is one; guard against a change
		return nil, fmt.Errorf("channel: proxy %s cannot dial with a context", u.Redacted())
	}
	c, err := cd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("channel: dial %s through proxy %s: %w", addr, u.Redacted(), err)
	}
	return c, nil
}

// redactURL hides a password in a proxy URL that failed to parse fully.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// NewHTTPTransport returns an http.Transport whose every connection is a
// channel to addr made by Dial: the request URL's host is ignored, and both
// http:// and https:// URLs work (no second TLS layer is added). Environment
// HTTP proxies are ignored; use cfg.Proxy.
//
// Bridges run many requests at once (a submission delivers and files its
// Sent copy concurrently, plus the event stream); idle channels are cheap
// next to a fresh TLS + Noise handshake, so keep enough of them.
func NewHTTPTransport(addr string, cfg ClientConfig) *http.Transport {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return Dial(ctx, addr, cfg)
	}
	return &http.Transport{
		Proxy:               nil,
		DialContext:         dial,
		DialTLSContext:      dial,
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
}
