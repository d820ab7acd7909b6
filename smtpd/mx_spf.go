package smtpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"smessenger/internal/dnsres"
)

// SPFResult is the outcome of an SPF check (RFC 7208 section 2.6).
type SPFResult string

// SPF results.
const (
	SPFNone      SPFResult = "none"
	SPFNeutral   SPFResult = "neutral"
	SPFPass      SPFResult = "pass"
	SPFFail      SPFResult = "fail"
	SPFSoftFail  SPFResult = "softfail"
	SPFTempError SPFResult = "temperror"
	SPFPermError SPFResult = "permerror"
)

// errSPFPerm and errSPFTemp carry the two error results through the
// recursion of include and redirect.
var (
	errSPFPerm = errors.New("smtpd: spf permerror")
	errSPFTemp = errors.New("smtpd: spf temperror")
)

// spfMaxLookups is RFC 7208 section 4.6.4's limit on DNS-querying terms;
// spfMaxVoid is its suggested limit on lookups that return nothing.
const (
	spfMaxLookups = 10
	spfMaxVoid    = 2
	spfMaxRecord  = 4096 // longer records are refused, not parsed
)

// spfEval holds the state of one check_host evaluation, shared by every
// nested include so that the lookup limit covers the whole tree.
type spfEval struct {
	ctx     context.Context
	res     dnsres.Resolver
	ip      net.IP
	sender  string // local@domain
	helo    string
	lookups int
	voids   int
}

// CheckSPF evaluates the SPF policy of domain for a message from ip with the
// envelope sender (empty sender: postmaster@helo, RFC 7208 section 2.4). It
// never returns an error: DNS trouble is temperror, a broken policy permerror.
func CheckSPF(ctx context.Context, res dnsres.Resolver, ip net.IP, sender, helo string) SPFResult {
	domain := helo
	if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		domain = sender[i+1:]
	} else {
		sender = "postmaster@" + helo
	}
	if domain == "" || ip == nil {
		return SPFNone
	}
	e := &spfEval{ctx: ctx, res: res, ip: ip, sender: sender, helo: helo}
	r, err := e.checkHost(domain, 0)
	switch {
	case errors.Is(err, errSPFTemp):
		return SPFTempError
	case err != nil:
		return SPFPermError
	}
	return r
}

// spfRecord fetches the single "v=spf1" TXT record of domain.
func (e *spfEval) spfRecord(domain string) (string, error) {
	txts, err := e.res.LookupTXT(e.ctx, domain)
	if errors.Is(err, dnsres.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", errSPFTemp
	}
	var found []string
	for _, t := range txts {
		lt := strings.ToLower(t)
		if lt == "v=spf1" || strings.HasPrefix(lt, "v=spf1 ") {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return "", nil
	case len(found) > 1, len(found[0]) > spfMaxRecord:
		return "", errSPFPerm
	}
	return found[0], nil
}

// checkHost is RFC 7208 section 4; depth bounds include/redirect nesting
// beyond the lookup counter, so a malformed chain cannot recurse forever.
func (e *spfEval) checkHost(domain string, depth int) (SPFResult, error) {
	if depth > spfMaxLookups {
		return "", errSPFPerm
	}
	rec, err := e.spfRecord(domain)
	if err != nil {
		return "", err
	}
	if rec == "" {
		return SPFNone, nil
	}
	terms, err := ParseSPF(rec)
	if err != nil {
		return "", errSPFPerm
	}
	var redirect string
	for _, t := range terms {
		if t.Modifier {
			if t.Name == "redirect" {
				redirect = t.Value
			}
			continue
		}
		match, err := e.match(t, domain, depth)
		if err != nil {
			return "", err
		}
		if match {
			return t.result(), nil
		}
	}
	if redirect != "" {
		if err := e.count(); err != nil {
			return "", err
		}
		target, err := e.expand(redirect, domain)
		if err != nil {
			return "", err
		}
		r, err := e.checkHost(target, depth+1)
		if err == nil && r == SPFNone {
			return "", errSPFPerm
		}
		return r, err
	}
	return SPFNeutral, nil
}

func (e *spfEval) count() error {
	e.lookups++
	if e.lookups > spfMaxLookups {
		return errSPFPerm
	}
	return nil
}

// void counts a lookup that found nothing (RFC 7208 section 4.6.4).
func (e *spfEval) void() error {
	e.voids++
	if e.voids > spfMaxVoid {
		return errSPFPerm
	}
	return nil
}

func (e *spfEval) match(t SPFTerm, domain string, depth int) (bool, error) {
	target := domain
	if t.Domain != "" {
		d, err := e.expand(t.Domain, domain)
		if err != nil {
			return false, err
		}
		target = d
	}
	switch t.Name {
	case "all":
		return true, nil
	case "ip4", "ip6":
		return t.Net.Contains(e.ip), nil
	case "include":
		if err := e.count(); err != nil {
			return false, err
		}
		r, err := e.checkHost(target, depth+1)
		if err != nil {
			return false, err
		}
		if r == SPFNone {
			return false, errSPFPerm
		}
		return r == SPFPass, nil
	case "a":
		if err := e.count(); err != nil {
			return false, err
		}
		return e.matchHost(target, t)
	case "mx":
		if err := e.count(); err != nil {
			return false, err
		}
		return e.matchMX(target, t)
	case "exists":
		if err := e.count(); err != nil {
			return false, err
		}
		ips, err := e.res.LookupIPAddr(e.ctx, target)
		if err != nil && !errors.Is(err, dnsres.ErrNotFound) {
			return false, errSPFTemp
		}
		if len(ips) == 0 {
			return false, e.void()
		}
		return true, nil
	case "ptr":
		// ptr is deprecated (RFC 7208 section 5.5); it counts as a lookup
		// but never matches, which is what the RFC recommends senders expect.
		return false, e.count()
	}
	return false, errSPFPerm
}

func (e *spfEval) matchHost(host string, t SPFTerm) (bool, error) {
	ips, err := e.res.LookupIPAddr(e.ctx, host)
	if err != nil && !errors.Is(err, dnsres.ErrNotFound) {
		return false, errSPFTemp
	}
	if len(ips) == 0 {
		return false, e.void()
	}
	for _, a := range ips {
		if t.cidrMatch(a.IP, e.ip) {
			return true, nil
		}
	}
	return false, nil
}

func (e *spfEval) matchMX(domain string, t SPFTerm) (bool, error) {
	mxs, err := e.res.LookupMX(e.ctx, domain)
	if err != nil && !errors.Is(err, dnsres.ErrNotFound) {
		return false, errSPFTemp
	}
	if len(mxs) == 0 {
		return false, e.void()
	}
	if len(mxs) > spfMaxLookups {
		return false, errSPFPerm
	}
	for _, mx := range mxs {
		ips, err := e.res.LookupIPAddr(e.ctx, mx.Host)
		if err != nil && !errors.Is(err, dnsres.ErrNotFound) {
			return false, errSPFTemp
		}
		for _, a := range ips {
			if t.cidrMatch(a.IP, e.ip) {
				return true, nil
			}
		}
	}
	return false, nil
}

// expand implements the macro language of RFC 7208 section 7 for the
// letters that make sense at SMTP time (s l o d i h); "p", "c", "r", "t"
// are explanation-only or deprecated and expand to "unknown".
func (e *spfEval) expand(spec, domain string) (string, error) {
	if !strings.Contains(spec, "%") {
		return spec, nil
	}
	var b strings.Builder
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(spec) {
			return "", errSPFPerm
		}
		i++
		switch spec[i] {
		case '%':
			b.WriteByte('%')
			continue
		case '_':
			b.WriteByte(' ')
			continue
		case '-':
			b.WriteString("%20")
			continue
		case '{':
		default:
			return "", errSPFPerm
		}
		end := strings.IndexByte(spec[i:], '}')
		if end < 2 {
			return "", errSPFPerm
		}
		v, err := e.macro(spec[i+1:i+end], domain)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		i += end
	}
	out := b.String()
	if len(out) > 253 {
		// RFC 7208 section 7.3: drop left-hand labels until it fits.
		for len(out) > 253 {
			j := strings.IndexByte(out, '.')
			if j < 0 {
				return "", errSPFPerm
			}
			out = out[j+1:]
		}
	}
	return out, nil
}

// macro expands one "letter[digits][r][delims]" body.
func (e *spfEval) macro(body, domain string) (string, error) {
	local, sdom, _ := strings.Cut(e.sender, "@")
	var v string
	switch body[0] | 0x20 {
	case 's':
		v = e.sender
	case 'l':
		v = local
	case 'o':
		v = sdom
	case 'd':
		v = domain
	case 'h':
		v = e.helo
	case 'i':
		if ip4 := e.ip.To4(); ip4 != nil {
			v = ip4.String()
		} else {
			h := fmt.Sprintf("%032x", []byte(e.ip.To16()))
			v = strings.Join(strings.Split(h, ""), ".")
		}
	case 'p', 'c', 'r', 't', 'v':
		v = "unknown"
	default:
		return "", errSPFPerm
	}
	rest := body[1:]
	n := 0
	for len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
		n = n*10 + int(rest[0]-'0')
		if n > 128 {
			return "", errSPFPerm
		}
		rest = rest[1:]
	}
	reverse := false
	if len(rest) > 0 && (rest[0]|0x20) == 'r' {
		reverse = true
		rest = rest[1:]
	}
	delims := "."
	if rest != "" {
		if strings.Trim(rest, ".-+,/_=") != "" {
			return "", errSPFPerm
		}
		delims = rest
	}
	parts := strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(delims, r) })
	if reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if n > 0 && n < len(parts) {
		parts = parts[len(parts)-n:]
	}
	return strings.Join(parts, "."), nil
}

// SPFTerm is one parsed directive or modifier of an SPF record.
type SPFTerm struct {
	Qualifier byte   // '+', '-', '~' or '?'
	Name      string // mechanism or modifier name, lower case
	Domain    string // domain-spec (may hold macros), empty if none
	Value     string // modifier value
	Modifier  bool
	Net       *net.IPNet // ip4 / ip6
	Prefix4   int        // a / mx dual-cidr-length, -1 if absent
	Prefix6   int
}

func (t SPFTerm) result() SPFResult {
	switch t.Qualifier {
	case '-':
		return SPFFail
	case '~':
		return SPFSoftFail
	case '?':
		return SPFNeutral
	}
	return SPFPass
}

func (t SPFTerm) cidrMatch(have, client net.IP) bool {
	if h4, c4 := have.To4(), client.To4(); h4 != nil || c4 != nil {
		if h4 == nil || c4 == nil {
			return false
		}
		bits := 32
		if t.Prefix4 >= 0 {
			bits = t.Prefix4
		}
		return (&net.IPNet{IP: h4, Mask: net.CIDRMask(bits, 32)}).Contains(c4)
	}
	bits := 128
	if t.Prefix6 >= 0 {
		bits = t.Prefix6
	}
	return (&net.IPNet{IP: have.To16(), Mask: net.CIDRMask(bits, 128)}).Contains(client)
}

// ParseSPF parses a "v=spf1 ..." record into terms (RFC 7208 section 4.6).
// It returns an error for any syntax error, which check_host turns into
// permerror. It is bounded: records over 4 KiB or 256 terms are refused.
func ParseSPF(rec string) ([]SPFTerm, error) {
	if len(rec) > spfMaxRecord {
		return nil, errors.New("smtpd: spf record too long")
	}
	fields := strings.Fields(rec)
	if len(fields) == 0 || !strings.EqualFold(fields[0], "v=spf1") {
		return nil, errors.New("smtpd: not an spf1 record")
	}
	if len(fields) > 257 {
		return nil, errors.New("smtpd: spf record has too many terms")
	}
	var terms []SPFTerm
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		t, err := parseSPFTerm(f)
		if err != nil {
			return nil, err
		}
		if t.Modifier && (t.Name == "redirect" || t.Name == "exp") {
			if seen[t.Name] {
				return nil, fmt.Errorf("smtpd: spf: duplicate %s", t.Name)
			}
			seen[t.Name] = true
		}
		terms = append(terms, t)
	}
	return terms, nil
}

func parseSPFTerm(f string) (SPFTerm, error) {
	t := SPFTerm{Qualifier: '+', Prefix4: -1, Prefix6: -1}
	bad := fmt.Errorf("smtpd: spf: bad term %q", truncate(f, 64))
	if i := strings.IndexAny(f, "=:/"); i > 0 && f[i] == '=' {
		name := strings.ToLower(f[:i])
		if !isSPFName(name) {
			return t, bad
		}
		t.Modifier, t.Name, t.Value = true, name, f[i+1:]
		if (name == "redirect" || name == "exp") && t.Value == "" {
			return t, bad
		}
		return t, nil
	}
	if strings.ContainsRune("+-~?", rune(f[0])) {
		t.Qualifier = f[0]
		f = f[1:]
	}
	name, arg, hasArg := strings.Cut(f, ":")
	if !hasArg {
		if j := strings.IndexByte(f, '/'); j >= 0 {
			name, arg = f[:j], f[j:]
		}
	}
	t.Name = strings.ToLower(name)
	switch t.Name {
	case "all":
		if arg != "" || hasArg {
			return t, bad
		}
	case "include", "exists":
		if arg == "" {
			return t, bad
		}
		t.Domain = arg
	case "ptr":
		t.Domain = arg
	case "a", "mx":
		dom, err := parseDualCIDR(&t, arg, hasArg)
		if err != nil {
			return t, bad
		}
		t.Domain = dom
	case "ip4", "ip6":
		n, err := parseSPFNet(t.Name, arg)
		if err != nil {
			return t, bad
		}
		t.Net = n
	default:
		return t, bad
	}
	return t, nil
}

func isSPFName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == ""
}

// parseDualCIDR splits "domain/24//64" into the domain and prefix lengths.
func parseDualCIDR(t *SPFTerm, arg string, hasArg bool) (string, error) {
	dom := arg
	if i := strings.IndexByte(arg, '/'); i >= 0 {
		dom = arg[:i]
		cidr := arg[i:]
		if v4, v6, ok := strings.Cut(cidr, "//"); ok {
			if v4 != "" {
				n, err := parsePrefix(v4[1:], 32)
				if err != nil || v4[0] != '/' {
					return "", errSPFPerm
				}
				t.Prefix4 = n
			}
			n, err := parsePrefix(v6, 128)
			if err != nil {
				return "", err
			}
			t.Prefix6 = n
		} else {
			n, err := parsePrefix(cidr[1:], 32)
			if err != nil {
				return "", err
			}
			t.Prefix4 = n
		}
	}
	if hasArg && dom == "" {
		return "", errSPFPerm
	}
	return dom, nil
}

func parsePrefix(s string, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max || (len(s) > 1 && s[0] == '0') {
		return 0, errSPFPerm
	}
	return n, nil
}

func parseSPFNet(kind, arg string) (*net.IPNet, error) {
	addr, pfx, hasPfx := strings.Cut(arg, "/")
	ip := net.ParseIP(addr)
	bits := 32
	if kind == "ip6" {
		bits = 128
		if ip == nil || ip.To4() != nil && !strings.Contains(addr, ":") {
			return nil, errSPFPerm
		}
	} else if ip == nil || ip.To4() == nil || strings.Contains(addr, ":") {
		return nil, errSPFPerm
	}
	n := bits
	if hasPfx {
		var err error
		if n, err = parsePrefix(pfx, bits); err != nil {
			return nil, err
		}
	}
	if kind == "ip4" {
		ip = ip.To4()
	} else {
		ip = ip.To16()
	}
	return &net.IPNet{IP: ip.Mask(net.CIDRMask(n, bits)), Mask: net.CIDRMask(n, bits)}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
