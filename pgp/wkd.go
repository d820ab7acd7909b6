package pgp

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// WKD defaults for WKDClient.
const (
	DefaultWKDMaxBytes = 256 << 10
	DefaultWKDTimeout  = 15 * time.Second
)

const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// zbase32 encodes b with the z-base-32 alphabet, most significant bit
// first, as the WKD draft (section 3.1) requires.
func zbase32(b []byte) string {
	var out strings.Builder
	var acc uint32
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			out.WriteByte(zbase32Alphabet[(acc>>(bits-5))&31])
			bits -= 5
		}
	}
	if bits > 0 {
		out.WriteByte(zbase32Alphabet[(acc<<(5-bits))&31])
	}
	return out.String()
}

// asciiLower lower-cases only ASCII letters: the draft maps upper-case
// ASCII to lower case and leaves other octets alone.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// WKDHash returns the z-base-32 encoded SHA-1 of the lower-cased local part.
func WKDHash(localPart string) string {
	sum := sha1.Sum([]byte(asciiLower(localPart)))
	return zbase32(sum[:])
}

func splitAddress(address string) (local, domain string, err error) {
	i := strings.LastIndexByte(address, '@')
	if i <= 0 || i == len(address)-1 {
		return "", "", fmt.Errorf("pgp: wkd: invalid address %q", address)
	}
	local, domain = address[:i], strings.ToLower(address[i+1:])
	if strings.ContainsAny(domain, "/?#@ \t\r\n") {
		return "", "", fmt.Errorf("pgp: wkd: invalid domain %q", domain)
	}
	return local, domain, nil
}

// WKDURLs returns the advanced and direct lookup URLs for address (draft
// section 3.1).
func WKDURLs(address string) (advanced, direct string, err error) {
	local, domain, err := splitAddress(address)
	if err != nil {
		return "", "", err
	}
	h, l := WKDHash(local), url.QueryEscape(local)
	advanced = "https://openpgpkey." + domain + "/.well-known/openpgpkey/" + domain + "/hu/" + h + "?l=" + l
	direct = "https://" + domain + "/.well-known/openpgpkey/hu/" + h + "?l=" + l
	return advanced, direct, nil
}

// WKDClient looks keys up in the Web Key Directory. HTTP is the client to
// use (nil: http.DefaultClient); MaxBytes and Timeout bound each download
// (0: the defaults).
type WKDClient struct {
	HTTP     *http.Client
	MaxBytes int64
	Timeout  time.Duration
}

// Lookup fetches the key for address, trying the advanced method and then
// the direct one. Only a key with a User ID for address is returned; when
// neither method has one the error wraps ErrNoKey.
func (c *WKDClient) Lookup(ctx context.Context, address string) (*Key, error) {
	advanced, direct, err := WKDURLs(address)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, u := range []string{advanced, direct} {
		k, err := c.fetch(ctx, u, address)
		if err == nil {
			return k, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pgp: wkd: %w", ctx.Err())
		}
		if firstErr == nil || errors.Is(firstErr, ErrNoKey) {
			firstErr = err
		}
	}
	return nil, firstErr
}

func (c *WKDClient) fetch(ctx context.Context, u, address string) (*Key, error) {
	timeout, max := c.Timeout, c.MaxBytes
	if timeout <= 0 {
		timeout = DefaultWKDTimeout
	}
	if max <= 0 {
		max = DefaultWKDMaxBytes
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("pgp: wkd: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Unreachable hosts (no openpgpkey subdomain, say) mean "not here".
		return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", ErrNoKey, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("pgp: wkd: %w", err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: WKD response larger than %d bytes", ErrTooLarge, max)
	}
	keys, err := ReadKeys(data)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.HasAddress(address) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no key with a User ID for the address", ErrNoKey)
}

// WKDHandler serves the keys of local addresses in the Web Key Directory:
// /.well-known/openpgpkey/hu/HASH?l=LOCAL (direct, domain from the Host
// header), /.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL (advanced) and
// the policy files. Because lookup is by address, the l parameter is
// required and must hash to HASH. lookup returns the binary key, or an
// error or nil for "no key"; domains lists the served domains.
func WKDHandler(lookup func(ctx context.Context, address string) ([]byte, error), domains []string) http.Handler {
	served := map[string]bool{}
	for _, d := range domains {
		served[strings.ToLower(d)] = true
	}
	return &wkdHandler{lookup: lookup, domains: served}
}

type wkdHandler struct {
	lookup  func(ctx context.Context, address string) ([]byte, error)
	domains map[string]bool
}

const wkdPrefix = "/.well-known/openpgpkey/"

func (h *wkdHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, wkdPrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	domain := hostDomain(r.Host)
	segs := strings.Split(rest, "/")
	if len(segs) == 3 || (len(segs) == 2 && segs[1] == "policy") {
		domain, segs = strings.ToLower(segs[0]), segs[1:] // advanced form
	}
	if !h.domains[domain] {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch {
	case len(segs) == 1 && segs[0] == "policy":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
	case len(segs) == 2 && segs[0] == "hu":
		local := r.URL.Query().Get("l")
		if local == "" || WKDHash(local) != segs[1] {
			http.NotFound(w, r)
			return
		}
		key, err := h.lookup(r.Context(), asciiLower(local)+"@"+domain)
		if err != nil || len(key) == 0 {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(key)
	default:
		http.NotFound(w, r)
	}
}

func hostDomain(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
