package pgp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// SummaryVersion is the version of the Summary layout written by
// EncodeSummary.
const SummaryVersion = 1

// Limits on MIME structure: go-message bounds neither, and a message with a
// million empty parts or deep nesting would otherwise cost unbounded CPU and
// memory in every bridge that summarizes it.
const (
	MaxParts   = 1000
	MaxDepth   = 50
	previewLen = 200
)

// Address is one mailbox of an IMAP ENVELOPE address list. Name is kept in
// header form (RFC 2047 encoded words intact), as ENVELOPE carries it.
type Address struct{ Name, Mailbox, Host string }

// Envelope is the IMAP ENVELOPE data (RFC 9051 section 7.5.2). Subject is
// the unfolded raw header value. Sender and ReplyTo default to From, as
// IMAP requires.
type Envelope struct {
	Date                               time.Time
	Subject                            string
	From, Sender, ReplyTo, To, Cc, Bcc []Address
	InReplyTo                          []string
	MessageID                          string
}

// Part is the IMAP BODYSTRUCTURE data of one MIME part (RFC 9051 section
// 7.5.2). Type, Subtype, parameter names and Encoding are lower case.
type Part struct {
	Type, Subtype     string
	Params            map[string]string
	ID, Description   string
	Encoding          string
	Size              int64 // octets of the encoded body
	Lines             int64 // text/* and message/rfc822 only
	MD5               string
	Disposition       string
	DispositionParams map[string]string
	Language          []string
	Location          string
	Children          []Part    // multipart/*
	Envelope          *Envelope // message/rfc822
	Inner             *Part     // message/rfc822
}

// Summary is what a client's message list needs, stored as the header blob.
type Summary struct {
	Version   int
	Header    []byte // the raw header section, including the blank line
	Size      int64  // octets of the whole message
	Preview   string // first ~200 characters of the first text part
	Envelope  Envelope
	Structure Part
	// Encrypted: the message itself is PGP/MIME or inline-PGP encrypted,
	// so the bridge must decrypt the body before showing it.
	Encrypted bool
}

// summarizer carries the part budget across the recursion.
type summarizer struct {
	lim     Limits
	parts   int
	preview string
	found   bool
}

// Limits bound the MIME structure Summarize walks. MaxParts counts every
// entity, the message itself included; MaxDepth counts the levels below
// the message (a multipart's part, an attached message/rfc822). A field
// of zero or less takes the package default (MaxParts, MaxDepth).
type Limits struct {
	MaxParts int
	MaxDepth int
}

// Summarize computes the Summary of an RFC 5322 message. Malformed MIME is
// not an error: what cannot be parsed is described as text/plain. The only
// errors are the structural limits (MaxParts, MaxDepth), wrapping ErrLimit.
func Summarize(raw []byte) (*Summary, error) {
	return SummarizeLimited(raw, Limits{})
}

// SummarizeLimited is Summarize with the structural limits lim, for a
// caller that enforces its own (the MX refuses such mail at DATA). The
// walk stops at the first entity past a limit, so a message of a million
// parts or a thousand levels costs no more than the limit's worth.
func SummarizeLimited(raw []byte, lim Limits) (*Summary, error) {
	if lim.MaxParts <= 0 {
		lim.MaxParts = MaxParts
	}
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = MaxDepth
	}
	s := &summarizer{lim: lim}
	hdr, body, h := splitMessage(raw)
	part, err := s.part(h, body, 0)
	if err != nil {
		return nil, err
	}
	return &Summary{
		Version:   SummaryVersion,
		Header:    hdr,
		Size:      int64(len(raw)),
		Preview:   s.preview,
		Envelope:  envelopeOf(h),
		Structure: part,
		Encrypted: isEncrypted(h, body),
	}, nil
}

// splitMessage returns the raw header section, the body and the parsed
// header. A header that does not parse yields an empty parsed header, so
// the message is then treated as text/plain.
func splitMessage(raw []byte) (hdr, body []byte, h textproto.Header) {
	rd := bytes.NewReader(raw)
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(rd)
	parsed, err := textproto.ReadHeader(br)
	off := len(raw) - rd.Len() - br.Buffered()
	br.Reset(nil)
	headerReaders.Put(br)
	if err != nil {
		// Fall back to the first blank line for the split.
		if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
			return raw[:i+4], raw[i+4:], textproto.Header{}
		}
		if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
			return raw[:i+2], raw[i+2:], textproto.Header{}
		}
		return raw, nil, textproto.Header{}
	}
	return raw[:off], raw[off:], parsed
}

// headerReaders recycles splitMessage's buffered readers: every summary
// and every PGP/MIME check parses at least one header, and ReadHeader
// copies what it keeps, so nothing refers to a reader after its return.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func (s *summarizer) part(h textproto.Header, body []byte, depth int) (Part, error) {
	s.parts++
	if s.parts > s.lim.MaxParts {
		return Part{}, fmt.Errorf("%w: %w: more than %d", ErrLimit, ErrTooManyParts, s.lim.MaxParts)
	}
	if depth > s.lim.MaxDepth {
		return Part{}, fmt.Errorf("%w: %w: deeper than %d", ErrLimit, ErrTooDeep, s.lim.MaxDepth)
	}
	mh := message.Header{Header: h}
	p := Part{Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"}}
	if t, params, err := mh.ContentType(); err == nil && strings.Count(t, "/") == 1 {
		p.Type, p.Subtype, _ = strings.Cut(strings.ToLower(t), "/")
		p.Params = lowerKeys(params)
	}
	p.ID = strings.TrimSpace(h.Get("Content-Id"))
	p.Description = strings.TrimSpace(h.Get("Content-Description"))
	p.Encoding = strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	if p.Encoding == "" {
		p.Encoding = "7bit"
	}
	p.MD5 = strings.TrimSpace(h.Get("Content-Md5"))
	if d, params, err := mh.ContentDisposition(); err == nil && d != "" {
		p.Disposition, p.DispositionParams = strings.ToLower(d), lowerKeys(params)
	}
	for _, l := range strings.Split(h.Get("Content-Language"), ",") {
		if l = strings.TrimSpace(l); l != "" {
			p.Language = append(p.Language, l)
		}
	}
	p.Location = strings.TrimSpace(h.Get("Content-Location"))
	p.Size = int64(len(body))
	switch {
	case p.Type == "multipart":
		if err := s.children(&p, body, depth); err != nil {
			return Part{}, err
		}
	case p.Type == "message" && p.Subtype == "rfc822":
		p.Lines = countLines(body)
		_, ib, ih := splitMessage(body)
		inner, err := s.part(ih, ib, depth+1)
		if err != nil {
			return Part{}, err
		}
		env := envelopeOf(ih)
		p.Envelope, p.Inner = &env, &inner
	case p.Type == "text":
		p.Lines = countLines(body)
		s.takePreview(mh, body, p.Subtype)
	}
	return p, nil
}

// children splits a multipart body. A multipart without a usable boundary,
// or whose first part cannot be read, is described as text/plain.
func (s *summarizer) children(p *Part, body []byte, depth int) error {
	boundary := p.Params["boundary"]
	if boundary != "" {
		mr := textproto.NewMultipartReader(bytes.NewReader(body), boundary)
		from := 0
		for {
			part, err := mr.NextPart()
			if err != nil {
				break // io.EOF or malformed: keep what was read
			}
			var data []byte
			data, from, err = readPart(body, from, part)
			if err != nil && len(data) == 0 {
				break
			}
			c, err := s.part(part.Header, data, depth+1)
			if err != nil {
				return err
			}
			p.Children = append(p.Children, c)
		}
	}
	if len(p.Children) == 0 {
		p.Type, p.Subtype, p.Params = "text", "plain", map[string]string{"charset": "us-ascii"}
		p.Lines = countLines(body)
	}
	return nil
}

// readPart reads one part of a multipart body and returns its bytes as a
// slice of body when it finds them there, with the offset after them.
//
// Why: the multipart reader hands out each part's raw bytes, which are
// therefore a substring of body at or after the previous part's end.
// Reading them into a copy at every level made a message nested d deep
// cost d times its size (30 levels of a 25 MB message: 750 MB held at
// once). Here each level holds one 32 KiB buffer: the first chunk is
// located in body, and each further chunk is checked against the bytes
// that follow it. Should they differ (two parts starting alike, or a
// reader that transforms), the part is copied as before.
func readPart(body []byte, from int, part io.Reader) ([]byte, int, error) {
	bp := partBuffers.Get().(*[]byte)
	defer partBuffers.Put(bp)
	buf := *bp
	n, err := io.ReadFull(part, buf)
	done, err := readDone(err)
	if err != nil {
		return append([]byte(nil), buf[:n]...), from, err
	}
	i := bytes.Index(body[from:], buf[:n])
	if i < 0 {
		return copyRest(buf[:n], part, from)
	}
	start, end := from+i, from+i+n
	for !done {
		n, err = io.ReadFull(part, buf)
		if done, err = readDone(err); err != nil {
			return body[start:end], end, err
		}
		if end+n > len(body) || !bytes.Equal(body[end:end+n], buf[:n]) {
			return copyRest(append(append([]byte(nil), body[start:end]...), buf[:n]...), part, from)
		}
		end += n
	}
	return body[start:end], end, nil
}

// partBuffers recycles readPart's comparison buffers; what readPart
// returns is a slice of body or a copy, never the buffer.
var partBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// readDone maps io.ReadFull's end-of-part errors to done.
func readDone(err error) (bool, error) {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return true, nil
	}
	return false, err
}

// copyRest returns head followed by the rest of part, as a copy, and from
// unchanged: where the part lies in body is not known.
func copyRest(head []byte, part io.Reader, from int) ([]byte, int, error) {
	rest, err := io.ReadAll(part)
	out := append(append(make([]byte, 0, len(head)+len(rest)), head...), rest...)
	return out, from, err
}

func (s *summarizer) takePreview(mh message.Header, body []byte, subtype string) {
	if s.found || (subtype != "plain" && subtype != "html") {
		return
	}
	if d, _, _ := mh.ContentDisposition(); strings.EqualFold(d, "attachment") {
		return
	}
	// A preview is previewLen runes: plain text needs a few KiB of it even
	// after white space collapses; HTML needs more, since tags and styles
	// are stripped first. Reading the whole part was most of Summarize's cost.
	limit := 4 << 10
	if subtype == "html" {
		limit = 32 << 10
	}
	text := body
	if !plainBytes(mh) {
		if e, err := message.New(mh, bytes.NewReader(body)); err == nil || message.IsUnknownCharset(err) {
			if b, err := io.ReadAll(io.LimitReader(e.Body, int64(limit))); err == nil || len(b) > 0 {
				text = b
			}
		}
	}
	if len(text) > limit {
		text = text[:limit]
	}
	str := strings.ToValidUTF8(string(text), "\uFFFD")
	if subtype == "html" {
		str = stripHTML(str)
	}
	s.preview = collapse(str, previewLen)
	s.found = subtype == "plain" || s.preview != ""
}

// plainBytes reports whether a text part's body is its text as it is: no
// transfer encoding to undo and a charset that needs no conversion, so the
// preview can be cut from the body without a decoding reader and a copy.
func plainBytes(mh message.Header) bool {
	switch strings.ToLower(strings.TrimSpace(mh.Get("Content-Transfer-Encoding"))) {
	case "", "7bit", "8bit", "binary":
	default:
		return false
	}
	_, params, err := mh.ContentType()
	if err != nil {
		return false
	}
	switch strings.ToLower(params["charset"]) {
	case "", "us-ascii", "utf-8", "utf8":
		return true
	}
	return false
}

var (
	htmlDrop = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)>`)
	htmlTag  = regexp.MustCompile(`(?s)<[^>]*>`)
)

func stripHTML(s string) string {
	s = htmlDrop.ReplaceAllString(s, " ")
	s = htmlTag.ReplaceAllString(s, " ")
	return htmlEntities.Replace(s)
}

var htmlEntities = strings.NewReplacer("&nbsp;", " ", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'")

// collapse turns every run of white space into one space and cuts at n
// runes.
func collapse(s string, n int) string {
	var b strings.Builder
	space, count := false, 0
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\f' || r == '\v' || r == 0xa0 {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
			count++
		}
		space = false
		if count >= n {
			break
		}
		b.WriteRune(r)
		count++
	}
	out := b.String()
	if utf8.RuneCountInString(out) > n {
		out = string([]rune(out)[:n])
	}
	return out
}

func countLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte("\n")))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

func lowerKeys(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// unfold joins folded header lines, keeping encoded words as they are.
func unfold(v string) string {
	v = strings.ReplaceAll(v, "\r\n", "")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.TrimSpace(v)
}

func envelopeOf(h textproto.Header) Envelope {
	env := Envelope{
		Subject:   unfold(h.Get("Subject")),
		From:      addressList(h, "From"),
		Sender:    addressList(h, "Sender"),
		ReplyTo:   addressList(h, "Reply-To"),
		To:        addressList(h, "To"),
		Cc:        addressList(h, "Cc"),
		Bcc:       addressList(h, "Bcc"),
		InReplyTo: msgIDs(h.Get("In-Reply-To")),
		MessageID: firstOr(msgIDs(h.Get("Message-Id")), ""),
	}
	if d := h.Get("Date"); d != "" {
		if t, err := mail.ParseDate(unfold(d)); err == nil {
			env.Date = t
		}
	}
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	return env
}

var msgIDRe = regexp.MustCompile(`<[^<>\s]+>`)

func msgIDs(v string) []string {
	return msgIDRe.FindAllString(unfold(v), 100)
}

func firstOr(l []string, def string) string {
	if len(l) > 0 {
		return l[0]
	}
	return def
}

var addrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: message.CharsetReader}}

// addressList parses an address header leniently: an unparsable list is
// tried address by address, and what still fails is dropped.
func addressList(h textproto.Header, key string) []Address {
	v := unfold(h.Get(key))
	if v == "" {
		return nil
	}
	list, err := addrParser.ParseList(v)
	if err != nil {
		list = nil
		for _, one := range strings.Split(v, ",") {
			if a, err := addrParser.Parse(one); err == nil {
				list = append(list, a)
			}
		}
	}
	var out []Address
	for _, a := range list {
		mbox, host, _ := strings.Cut(a.Address, "@")
		name := a.Name
		if name != "" && !isASCII(name) {
			name = mime.QEncoding.Encode("utf-8", name)
		}
		out = append(out, Address{Name: name, Mailbox: mbox, Host: host})
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// errNotSummary marks decoder input that is not a summary at all.
var errNotSummary = errors.New("pgp: not an encoded summary")
