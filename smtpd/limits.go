package smtpd

import (
	"bytes"
	"errors"
	"mime"
	"strings"
)

// Limit errors found by mxCheckMessage before anything is sealed. They are
// internal: the session maps each to a fixed SMTP reply.
var (
	ErrBareNewline   = errors.New("smtpd: bare CR or LF in message")
	ErrHeaderTooBig  = errors.New("smtpd: header section too large")
	ErrTooManyParts  = errors.New("smtpd: too many MIME parts")
	ErrTooDeep       = errors.New("smtpd: MIME nesting too deep")
	ErrNoHeaderBreak = errors.New("smtpd: message has no header/body separator")
)

// mxLimits are the structural limits applied to every message; go-message
// parses any depth and part count, so we bound them before it ever sees one.
type mxLimits struct {
	MaxHeaderBytes int
	MaxParts       int
	MaxDepth       int
}

// mxCheckMessage verifies that raw (the dot-unstuffed DATA) uses CRLF line
// ends only and stays within the limits. It reads raw once per nesting level
// and allocates nothing proportional to the part count.
func mxCheckMessage(raw []byte, lim mxLimits) error {
	if err := mxCheckNewlines(raw); err != nil {
		return err
	}
	parts := 0
	return mxCheckEntity(raw, lim, 0, &parts)
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

// mxCheckEntity checks one MIME entity at the given depth and recurses into
// multipart bodies and message/rfc822 parts, counting parts globally.
func mxCheckEntity(ent []byte, lim mxLimits, depth int, parts *int) error {
	if lim.MaxDepth > 0 && depth > lim.MaxDepth {
		return ErrTooDeep
	}
	hdr, body := mxSplitHeader(ent)
	if lim.MaxHeaderBytes > 0 && len(hdr) > lim.MaxHeaderBytes {
		return ErrHeaderTooBig
	}
	ct := mxHeaderValue(hdr, "Content-Type")
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		// A malformed Content-Type is treated as text/plain (RFC 2045
		// section 5.2), so it cannot hide structure from us.
		return nil
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		return mxCheckMultipart(body, params["boundary"], lim, depth, parts)
	case mt == "message/rfc822" || mt == "message/global":
		return mxCheckEntity(body, lim, depth+1, parts)
	}
	return nil
}

func mxCheckMultipart(body []byte, boundary string, lim mxLimits, depth int, parts *int) error {
	if boundary == "" || len(boundary) > 70 {
		return nil
	}
	delim := []byte("\r\n--" + boundary)
	// next finds the delimiter at or after pos; the first one may open the
	// body without a preceding CRLF, and we avoid copying body to add one.
	next := func(pos int) (at, after int) {
		if pos == 0 && bytes.HasPrefix(body, delim[2:]) {
			return 0, len(delim) - 2
		}
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			return -1, -1
		}
		return pos + i, pos + i + len(delim)
	}
	start := -1
	for pos := 0; pos <= len(body); {
		i, after := next(pos)
		if i < 0 {
			break
		}
		closing := bytes.HasPrefix(body[after:], []byte("--"))
		if start >= 0 {
			*parts++
			if lim.MaxParts > 0 && *parts > lim.MaxParts {
				return ErrTooManyParts
			}
			if err := mxCheckEntity(body[start:i], lim, depth+1, parts); err != nil {
				return err
			}
		}
		if closing {
			return nil
		}
		// The part begins after the rest of the delimiter line; the search
		// resumes at that line's CRLF so an empty part is still seen.
		eol := bytes.Index(body[after:], []byte("\r\n"))
		if eol < 0 {
			return nil
		}
		pos = after + eol
		start = pos + 2
	}
	if start >= 0 && start <= len(body) {
		// An unterminated last part is still a part to every lenient
		// parser downstream, so it is checked like the others.
		*parts++
		if lim.MaxParts > 0 && *parts > lim.MaxParts {
			return ErrTooManyParts
		}
		return mxCheckEntity(body[start:], lim, depth+1, parts)
	}
	return nil
}
