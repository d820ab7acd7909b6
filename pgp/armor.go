package pgp

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// Limits of the armor reader. A real armor header section is a few short
// "Version:" or "Comment:" lines; anything beyond these is hostile.
const (
	maxArmorHeaders    = 32
	maxArmorHeaderLine = 1024
)

var (
	armorBegin = []byte("-----BEGIN PGP ")
	armorEnd   = []byte("-----END PGP ")
	armorDash  = []byte("-----")
)

// dearmor decodes the first ASCII-armored block in data (RFC 9580 section
// 6.2) and returns its type ("PUBLIC KEY BLOCK", "MESSAGE", ...) and binary
// content, which may be at most max bytes.
//
// We do not use go-crypto's armor.Decode on input from outside: it reads
// through a 100-byte bufio.Reader and rebuilds a long header line by string
// concatenation, piece by piece, which is quadratic in the line length, and
// its cost cannot be bounded before it runs. This reader makes one linear
// pass over data, bounds the header section and the output before decoding,
// and requires the tail line, so a truncated block is an error. The CRC-24
// footer is optional and redundant with OpenPGP's own integrity checks, so
// its value is not checked (go-crypto does not check it either).
func dearmor(data []byte, max int) (typ string, bin []byte, err error) {
	start := findBeginLine(data)
	if start < 0 {
		return "", nil, fmt.Errorf("%w: armor: no BEGIN line", ErrMalformed)
	}
	rest := data[start:]
	line, rest := nextLine(rest)
	typ = string(line[len(armorBegin) : len(line)-len(armorDash)])
	if !isArmorType(typ) {
		return "", nil, fmt.Errorf("%w: armor: bad BEGIN line", ErrMalformed)
	}
	rest, err = skipArmorHeaders(rest)
	if err != nil {
		return "", nil, err
	}
	// The encoded data is at most as long as what is left; reject early
	// what cannot fit in max once decoded.
	b64 := make([]byte, 0, min(len(rest), base64.StdEncoding.EncodedLen(max)+4))
	for {
		if len(rest) == 0 {
			return "", nil, fmt.Errorf("%w: armor: no END line", ErrMalformed)
		}
		line, rest = nextLine(rest)
		line = bytes.TrimLeft(line, " \t")
		if bytes.HasPrefix(line, armorEnd) {
			if string(line) != "-----END PGP "+typ+"-----" {
				return "", nil, fmt.Errorf("%w: armor: END line does not match", ErrMalformed)
			}
			break
		}
		if len(line) == 5 && line[0] == '=' {
			continue // CRC-24 footer, see above
		}
		if base64.StdEncoding.DecodedLen(len(b64)+len(line)) > max+3 {
			return "", nil, fmt.Errorf("%w: armored data larger than %d bytes", ErrTooLarge, max)
		}
		b64 = append(b64, line...)
	}
	bin = make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(bin, b64)
	if err != nil {
		return "", nil, fmt.Errorf("%w: armor: bad base64", ErrMalformed)
	}
	if n > max {
		return "", nil, fmt.Errorf("%w: armored data larger than %d bytes", ErrTooLarge, max)
	}
	return typ, bin[:n], nil
}

// findBeginLine returns the offset of the first line that is an armor
// header line, or -1. Text before it is ignored, as RFC 9580 allows.
func findBeginLine(data []byte) int {
	off := 0
	for {
		i := bytes.Index(data[off:], armorBegin)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || data[i-1] == '\n' {
			line, _ := nextLine(data[i:])
			if len(line) > len(armorBegin)+len(armorDash) && bytes.HasSuffix(line, armorDash) {
				return i
			}
		}
		off = i + len(armorBegin)
	}
}

// skipArmorHeaders consumes the "Key: Value" armor headers and the blank
// line after them. A line without a colon also ends the headers: base64
// has no colon, and some writers omit the blank line.
func skipArmorHeaders(rest []byte) ([]byte, error) {
	for n := 0; ; n++ {
		if n > maxArmorHeaders {
			return nil, fmt.Errorf("%w: armor: more than %d headers", ErrMalformed, maxArmorHeaders)
		}
		line, after := nextLine(rest)
		if len(line) > maxArmorHeaderLine {
			return nil, fmt.Errorf("%w: armor: header line too long", ErrMalformed)
		}
		if len(line) == 0 {
			return after, nil
		}
		if bytes.IndexByte(line, ':') < 0 {
			return rest, nil
		}
		rest = after
	}
}

// nextLine splits off the first line of b, without its line ending and
// trailing white space.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.TrimRight(b, " \t\r"), nil
	}
	return bytes.TrimRight(b[:i], " \t\r"), b[i+1:]
}

// isArmorType accepts the block types of RFC 9580 section 6.2 and the
// "PGP MESSAGE, PART x/y" form: upper-case letters, digits, spaces, commas
// and slashes.
func isArmorType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == ',' || c == '/') {
			return false
		}
	}
	return true
}
