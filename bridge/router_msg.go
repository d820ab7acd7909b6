package bridge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message"
)

// Limits on a submitted message's header section: go-message and the
// summarizer parse any size, so the router bounds what it hands them.
const (
	maxOutgoingHeaderBytes = 1 << 20
	maxOutgoingFields      = 2000
)

// outgoing is a submitted message prepared for routing.
type outgoing struct {
	// sent is the sender's own copy: line endings normalised, Message-ID
	// and Date added when missing, Bcc kept (the sender wants to see whom
	// they wrote to), Received and X-Originating-IP removed.
	sent []byte
	// public is what every recipient gets: sent without Bcc/Resent-Bcc.
	public []byte
	// messageID is the Message-ID field value (with angle brackets).
	messageID string
	// from holds the addresses of the From field, lower-cased.
	from []string
	// visible holds the lower-cased To/Cc addresses: the recipients every
	// recipient learns about anyway.
	visible map[string]bool
}

// NormalizeNewlines returns raw with every line ending as CRLF: a bare LF
// becomes CRLF and a bare CR becomes CRLF, so no bare CR or LF survives into
// what is relayed (the SMTP smuggling vectors of RFC 5321 section 2.3.8 all
// need one). raw is returned unchanged (not copied) when it is already
// canonical.
func NormalizeNewlines(raw []byte) []byte {
	if canonicalNewlines(raw) {
		return raw
	}
	out := make([]byte, 0, len(raw)+len(raw)/32+2)
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '\r' && i+1 < len(raw) && raw[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// canonicalNewlines reports whether every CR in raw is followed by LF and
// every LF preceded by CR.
func canonicalNewlines(raw []byte) bool {
	for i := 0; i < len(raw); {
		j := bytes.IndexAny(raw[i:], "\r\n")
		if j < 0 {
			return true
		}
		k := i + j
		if raw[k] == '\n' || k+1 >= len(raw) || raw[k+1] != '\n' {
			return false
		}
		i = k + 2
	}
	return true
}

// validFieldName reports whether name is an RFC 5322 field name (printable
// US-ASCII except colon).
func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// strippedFields never leave the bridge: Received and X-Originating-IP can
// carry the client's IP address, and no hop before the server has any
// business adding trace fields to a submission.
var strippedFields = map[string]bool{"received": true, "x-originating-ip": true}

// bccFields are removed from what recipients get (RFC 5322 section 3.6.3).
var bccFields = map[string]bool{"bcc": true, "resent-bcc": true}

// prepareOutgoing normalises a submitted message and checks its header
// section. fromAddr (the envelope sender) gives the domain of a generated
// Message-ID. Errors wrap ErrBadMessage and say what is wrong.
func prepareOutgoing(raw []byte, now time.Time, fromAddr string) (*outgoing, error) {
	raw = NormalizeNewlines(raw)
	fields, body, err := outgoingFields(raw)
	if err != nil {
		return nil, err
	}
	o := &outgoing{visible: map[string]bool{}}
	var sent, public bytes.Buffer
	sent.Grow(len(raw) + 128)
	public.Grow(len(raw) + 128)
	hasDate := false
	for _, f := range fields {
		name := fieldName(f)
		switch {
		case strippedFields[name]:
			continue
		case name == "message-id":
			o.messageID = fieldValue(f)
		case name == "date":
			hasDate = true
		case name == "from":
			if o.from, err = headerAddresses(fieldValue(f)); err != nil {
				return nil, fmt.Errorf("%w: From: %v", ErrBadMessage, err)
			}
		case name == "to" || name == "cc":
			// An unparsable To/Cc is the client's business; the envelope
			// decides delivery. It only makes the recipients count as hidden.
			addrs, _ := headerAddresses(fieldValue(f))
			for _, a := range addrs {
				o.visible[a] = true
			}
		}
		sent.Write(f)
		if !bccFields[name] {
			public.Write(f)
		}
	}
	if len(o.from) == 0 {
		return nil, fmt.Errorf("%w: no From field", ErrBadMessage)
	}
	var added []byte
	if o.messageID == "" {
		o.messageID = newMessageID(fromAddr)
		added = fmt.Appendf(added, "Message-ID: %s\r\n", o.messageID)
	}
	if !hasDate {
		added = fmt.Appendf(added, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	for _, b := range []*bytes.Buffer{&sent, &public} {
		b.Write(added)
		b.WriteString("\r\n")
		b.Write(body)
	}
	o.sent, o.public = sent.Bytes(), public.Bytes()
	return o, nil
}

// outgoingFields splits a CRLF-normalised message into header fields and
// body, refusing what is not a header section.
func outgoingFields(raw []byte) (fields [][]byte, body []byte, err error) {
	hdrLen := bytes.Index(raw, []byte("\r\n\r\n"))
	switch {
	case bytes.HasPrefix(raw, []byte("\r\n")):
		hdrLen = 0
	case hdrLen < 0:
		// No body: the whole message is header (RFC 5322 allows it).
		hdrLen = len(raw)
	default:
		hdrLen += 2
	}
	if hdrLen > maxOutgoingHeaderBytes {
		return nil, nil, fmt.Errorf("%w: header section larger than %d bytes", ErrBadMessage, maxOutgoingHeaderBytes)
	}
	fields, body = splitMessage(raw)
	if len(fields) == 0 {
		return nil, nil, fmt.Errorf("%w: no header section", ErrBadMessage)
	}
	if len(fields) > maxOutgoingFields {
		return nil, nil, fmt.Errorf("%w: more than %d header fields", ErrBadMessage, maxOutgoingFields)
	}
	for i, f := range fields {
		name, _, ok := bytes.Cut(f, []byte(":"))
		if !ok || !validFieldName(name) {
			return nil, nil, fmt.Errorf("%w: header line %d is not a field", ErrBadMessage, i+1)
		}
		if !bytes.HasSuffix(f, []byte("\r\n")) {
			// The last field of a body-less message: end it properly.
			fields[i] = append(f[:len(f):len(f)], '\r', '\n')
		}
	}
	return fields, body, nil
}

var headerAddrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: message.CharsetReader}}

// headerAddresses parses an address-list field value into lower-cased
// addresses.
func headerAddresses(v string) ([]string, error) {
	list, err := headerAddrParser.ParseList(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, strings.ToLower(a.Address))
	}
	return out, nil
}

// newMessageID returns a random Message-ID in the sender's domain.
func newMessageID(from string) string {
	domain := "smessenger.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = strings.ToLower(from[i+1:])
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("bridge: no randomness: " + err.Error())
	}
	return "<" + hex.EncodeToString(b[:]) + "@" + domain + ">"
}

// messageIDOf returns the Message-ID of raw (a header section or a whole
// message), or "".
func messageIDOf(raw []byte) string {
	fields, _ := splitMessage(raw)
	for _, f := range fields {
		if fieldName(f) == "message-id" {
			return fieldValue(f)
		}
	}
	return ""
}
