// Package mtasts implements the sending side of SMTP MTA Strict Transport
// Security (RFC 8461): it reads a domain's "_mta-sts" TXT record (section
// 3.1), fetches and parses its HTTPS policy (sections 3.2 and 3.3), caches
// it by id and max_age (section 5.1), and matches MX host names against the
// policy's patterns (section 4.1). The relay decides what to do with the
// policy (section 5).
package mtasts

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is a policy's mode (RFC 8461 section 3.2).
type Mode string

// The three policy modes.
const (
	ModeEnforce Mode = "enforce" // deliver only over verified TLS to a matching MX
	ModeTesting Mode = "testing" // deliver as usual, report violations
	ModeNone    Mode = "none"    // as if there were no policy
)

// MaxAgeLimit is the largest max_age RFC 8461 allows (about a year); larger
// values are clamped to it rather than rejected, so a domain asking for a
// long-lived policy still gets one.
const MaxAgeLimit = 31557600 * time.Second

// ErrInvalidPolicy is returned (wrapped) for a policy body that does not
// follow RFC 8461 section 3.2; the sender then has no policy.
var ErrInvalidPolicy = errors.New("mtasts: invalid policy")

// ErrNoRecord is returned (wrapped) when a domain publishes no usable
// "_mta-sts" TXT record: none, several, or a malformed one (section 3.1).
var ErrNoRecord = errors.New("mtasts: no valid TXT record")

// Policy is a parsed MTA-STS policy.
type Policy struct {
	Mode   Mode
	MX     []string // lower-case patterns, "*.example.com" or "mx.example.com"
	MaxAge time.Duration
}

// Parse reads a policy body (RFC 8461 section 3.2). Lines end in LF or
// CRLF; unknown fields are ignored; version, mode and max_age must appear
// exactly once, mx at least once unless the mode is none.
func Parse(body []byte) (*Policy, error) {
	p := &Policy{}
	seen := map[string]bool{}
	for _, raw := range bytes.Split(body, []byte("\n")) {
		line := strings.TrimSuffix(string(raw), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok || !validKey(key) {
			return nil, fmt.Errorf("%w: malformed line", ErrInvalidPolicy)
		}
		val = strings.Trim(val, " \t")
		if !printable(val) {
			return nil, fmt.Errorf("%w: bad characters in %s", ErrInvalidPolicy, key)
		}
		if key != "mx" && seen[key] {
			return nil, fmt.Errorf("%w: duplicate %s", ErrInvalidPolicy, key)
		}
		seen[key] = true
		if err := p.setField(key, val); err != nil {
			return nil, err
		}
	}
	switch {
	case !seen["version"]:
		return nil, fmt.Errorf("%w: no version", ErrInvalidPolicy)
	case !seen["mode"]:
		return nil, fmt.Errorf("%w: no mode", ErrInvalidPolicy)
	case !seen["max_age"]:
		return nil, fmt.Errorf("%w: no max_age", ErrInvalidPolicy)
	case len(p.MX) == 0 && p.Mode != ModeNone:
		return nil, fmt.Errorf("%w: no mx", ErrInvalidPolicy)
	}
	return p, nil
}

func (p *Policy) setField(key, val string) error {
	switch key {
	case "version":
		if val != "STSv1" {
			return fmt.Errorf("%w: unsupported version", ErrInvalidPolicy)
		}
	case "mode":
		switch m := Mode(val); m {
		case ModeEnforce, ModeTesting, ModeNone:
			p.Mode = m
		default:
			return fmt.Errorf("%w: unknown mode", ErrInvalidPolicy)
		}
	case "max_age":
		// Section 3.2: 1 to 10 digits, so the value always fits an int64.
		if len(val) == 0 || len(val) > 10 || strings.Trim(val, "0123456789") != "" {
			return fmt.Errorf("%w: bad max_age", ErrInvalidPolicy)
		}
		n, _ := strconv.ParseInt(val, 10, 64)
		p.MaxAge = min(time.Duration(n)*time.Second, MaxAgeLimit)
	case "mx":
		pat := strings.TrimSuffix(strings.ToLower(val), ".")
		if !validPattern(pat) {
			return fmt.Errorf("%w: bad mx pattern", ErrInvalidPolicy)
		}
		p.MX = append(p.MX, pat)
	}
	return nil
}

// Match reports whether host (an MX name) matches one of the policy's mx
// patterns. A leading "*." stands for exactly one label (section 4.1):
// "*.example.com" matches "mx.example.com", not "example.com" nor
// "a.b.example.com".
func (p *Policy) Match(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return false
	}
	for _, pat := range p.MX {
		if rest, ok := strings.CutPrefix(pat, "*"); ok {
			label, found := strings.CutSuffix(host, rest)
			if found && label != "" && !strings.Contains(label, ".") {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// ParseTXT picks the policy id out of a domain's "_mta-sts" TXT records
// (section 3.1). Records not starting with "v=STSv1;" are discarded; unless
// exactly one remains and it carries a valid id, the domain has no policy.
func ParseTXT(records []string) (string, error) {
	var rec string
	n := 0
	for _, r := range records {
		if strings.HasPrefix(r, "v=STSv1;") || r == "v=STSv1" {
			rec = r
			n++
		}
	}
	if n != 1 {
		return "", fmt.Errorf("%w: %d STSv1 records", ErrNoRecord, n)
	}
	id := ""
	for i, f := range strings.Split(rec, ";") {
		f = strings.Trim(f, " \t")
		if f == "" && i > 0 {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("%w: malformed field", ErrNoRecord)
		}
		if k == "id" && id == "" {
			id = v
		}
	}
	if id == "" || len(id) > 32 || !alnum(id) {
		return "", fmt.Errorf("%w: bad id", ErrNoRecord)
	}
	return id, nil
}

func validKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func alnum(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validPattern accepts a host name, optionally with a leading "*." wildcard
// label; the wildcard must leave at least two labels after it.
func validPattern(p string) bool {
	name, wild := strings.CutPrefix(p, "*.")
	if name == "" || len(p) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	if wild && len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
