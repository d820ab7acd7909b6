package smtpd

import (
	"bytes"
	"errors"
	"strings"
)

// Limit errors found by mxCheckMessage before anything is parsed. They are
// internal: the session maps each to a fixed SMTP reply.
var (
	ErrBareNewline   = errors.New("smtpd: bare CR or LF in message")
	ErrHeaderTooBig  = errors.New("smtpd: header section too large")
	ErrNoHeaderBreak = errors.New("smtpd: message has no header/body separator")
)

// mxCheckMessage verifies that raw (the dot-unstuffed DATA) uses CRLF line
// ends only and that its header section is at most maxHeaderBytes (0: no
// limit). These are byte checks; the MIME structure (part count, nesting
// depth) is bounded by pgp.SummarizeLimited, which walks it with go-message
// and stops at the first entity past a limit.
func mxCheckMessage(raw []byte, maxHeaderBytes int) error {
	if err := mxCheckNewlines(raw); err != nil {
		return err
	}
	if hdr, _ := mxSplitHeader(raw); maxHeaderBytes > 0 && len(hdr) > maxHeaderBytes {
		return ErrHeaderTooBig
	}
	return nil
}

// mxCheckNewlines rejects any CR not followed by LF and any LF not preceded
// by CR: the SMTP smuggling vectors all rely on one of them being taken for
// an end of line by some hop (RFC 5321 section 2.3.8).
func mxCheckNewlines(raw []byte) error {
	// Every LF must follow a CR; then, if there are as many CRs as LFs,
	// no CR is left without its LF. IndexByte and Count are vectorised,
	// which matters here: every byte of every message passes this way.
	lf := 0
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		k := i + j
		if k == 0 || raw[k-1] != '\r' {
			return ErrBareNewline
		}
		lf++
		i = k + 1
	}
	if bytes.Count(raw, []byte{'\r'}) != lf {
		return ErrBareNewline
	}
	return nil
}

// mxSplitHeader returns the header section (without the blank line) and the
// body. A message without a blank line is all header.
func mxSplitHeader(raw []byte) (hdr, body []byte) {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return nil, raw[2:]
	}
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+2], raw[i+4:]
	}
	return raw, nil
}

// mxHasField reports whether hdr has a field named name (case-insensitive),
// whatever its value.
func mxHasField(hdr []byte, name string) bool {
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.Index(hdr, []byte("\r\n")); i >= 0 {
			line, hdr = hdr[:i], hdr[i+2:]
		} else {
			hdr = nil
		}
		if k, _, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return true
		}
	}
	return false
}

// mxHeaderValue returns the unfolded value of the first field named name in
// hdr, or "". It walks hdr line by line and never builds a map.
func mxHeaderValue(hdr []byte, name string) string {
	var val []byte
	found := false
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.Index(hdr, []byte("\r\n")); i >= 0 {
			line, hdr = hdr[:i], hdr[i+2:]
		} else {
			hdr = nil
		}
		if found {
			if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
				val = append(val, line...)
				continue
			}
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(strings.TrimSpace(string(k)), name) {
			val = append(val, v...)
			found = true
		}
	}
	return strings.TrimSpace(string(val))
}
