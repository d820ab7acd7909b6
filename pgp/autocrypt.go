package pgp

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// maxAutocryptValue bounds the header value accepted by ParseAutocrypt.
const maxAutocryptValue = 128 << 10

// AutocryptHeader is the Autocrypt header of Autocrypt Level 1, section
// 2.1: the sender's address, its prefer-encrypt setting and its key.
type AutocryptHeader struct {
	Addr          string
	PreferEncrypt bool   // prefer-encrypt=mutual
	KeyData       []byte // binary transferable public key
}

// maxAutocryptKey bounds the decoded keydata. Level 1 asks for a minimal
// key (one User ID, its subkey); ours are well under 1 KiB, and 64 KiB
// still holds an RSA-4096 key with a few User IDs.
const maxAutocryptKey = 64 << 10

// ParseAutocrypt parses an Autocrypt header value. Unknown critical
// attributes (names not starting with "_") make the header invalid, as
// Level 1 requires; the keydata must be a usable key (see ReadKey).
func ParseAutocrypt(value string) (*AutocryptHeader, error) {
	h, err := parseAutocryptSyntax(value)
	if err != nil {
		return nil, err
	}
	// The signature checks of ReadKey are the expensive part; every
	// cheaper reason to refuse the header has been tried by now.
	if _, err := ReadKey(h.KeyData); err != nil {
		return nil, fmt.Errorf("pgp: autocrypt: keydata: %w", err)
	}
	return h, nil
}

// parseAutocryptSyntax is ParseAutocrypt without the key checks: the
// attributes, the base64 and the packet framing of the keydata.
func parseAutocryptSyntax(value string) (*AutocryptHeader, error) {
	if len(value) > maxAutocryptValue {
		return nil, fmt.Errorf("pgp: autocrypt: header too long")
	}
	h := &AutocryptHeader{}
	var keydata string
	seen := map[string]bool{}
	for _, attr := range strings.Split(unfold(value), ";") {
		attr = strings.TrimSpace(attr)
		if attr == "" {
			continue
		}
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			return nil, fmt.Errorf("pgp: autocrypt: attribute without value")
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if seen[k] {
			return nil, fmt.Errorf("pgp: autocrypt: duplicate attribute %q", k)
		}
		seen[k] = true
		v = strings.TrimSpace(v)
		switch {
		case k == "addr":
			h.Addr = strings.ToLower(v)
		case k == "prefer-encrypt":
			h.PreferEncrypt = v == "mutual"
		case k == "keydata":
			keydata = v
		case strings.HasPrefix(k, "_"):
		default:
			return nil, fmt.Errorf("pgp: autocrypt: unknown critical attribute %q", k)
		}
	}
	if h.Addr == "" || !strings.Contains(h.Addr, "@") {
		return nil, fmt.Errorf("pgp: autocrypt: missing or invalid addr")
	}
	kd, err := base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, keydata))
	if err != nil || len(kd) == 0 {
		return nil, fmt.Errorf("pgp: autocrypt: missing or invalid keydata")
	}
	if len(kd) > maxAutocryptKey {
		return nil, fmt.Errorf("pgp: autocrypt: keydata: %w", ErrTooLarge)
	}
	if err := walkKeyPackets(kd); err != nil {
		return nil, fmt.Errorf("pgp: autocrypt: keydata: %w", err)
	}
	h.KeyData = kd
	return h, nil
}

// String returns the header value with the keydata folded into lines of
// 76 characters (CRLF followed by a space), ready to follow "Autocrypt: ".
func (h *AutocryptHeader) String() string {
	var b strings.Builder
	b.WriteString("addr=")
	b.WriteString(h.Addr)
	b.WriteString("; ")
	if h.PreferEncrypt {
		b.WriteString("prefer-encrypt=mutual; ")
	}
	b.WriteString("keydata=")
	kd := base64.StdEncoding.EncodeToString(h.KeyData)
	for len(kd) > 0 {
		n := min(76, len(kd))
		b.WriteString("\r\n ")
		b.WriteString(kd[:n])
		kd = kd[n:]
	}
	return b.String()
}

// AutocryptPeer is the Level 1 peer state (section 2.3) for one address: a
// small value the bridge persists as it likes.
type AutocryptPeer struct {
	Addr               string
	LastSeen           time.Time
	AutocryptTimestamp time.Time
	KeyData            []byte
	PreferEncrypt      bool
}

// Update applies the Level 1 update rules (section 2.3) for a message dated
// msgDate that carried header h (nil if it had none). Dates in the future
// count as now; messages older than the last one seen change nothing; a
// header for another address is ignored.
func (p *AutocryptPeer) Update(h *AutocryptHeader, msgDate time.Time) {
	if now := time.Now(); msgDate.After(now) {
		msgDate = now
	}
	if h != nil && p.Addr != "" && !strings.EqualFold(h.Addr, p.Addr) {
		h = nil
	}
	if !p.LastSeen.IsZero() && !msgDate.After(p.LastSeen) {
		return
	}
	p.LastSeen = msgDate
	if h == nil {
		return
	}
	if p.Addr == "" {
		p.Addr = strings.ToLower(h.Addr)
	}
	if msgDate.After(p.AutocryptTimestamp) {
		p.AutocryptTimestamp = msgDate
		p.KeyData = append([]byte(nil), h.KeyData...)
		p.PreferEncrypt = h.PreferEncrypt
	}
}
