package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"smessenger/pgp"
)

// maxDecoded bounds how much decoded text one message contributes to a
// BODY/TEXT search, so a crafted message cannot use unbounded memory.
const maxDecoded = 16 << 20

// Search implements imapserver.Session: flags, dates, sizes and header
// fields come from the cache; BODY and TEXT read the cached plaintext.
// Messages are tested a batch at a time, so only one batch's summaries and
// bodies are held at once.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, _ *imap.SearchOptions) (*imap.SearchData, error) {
	st := s.sel.st
	st.mu.RLock()
	cands := make([]target, 0, len(st.msgs))
	for i, m := range st.msgs {
		if seq := s.sel.tr.EncodeSeqNum(uint32(i + 1)); seq != 0 {
			cands = append(cands, target{seq: seq, msg: m})
		}
	}
	st.mu.RUnlock()
	var maxSeq, maxUID uint32
	if n := len(cands); n > 0 {
		maxSeq, maxUID = cands[n-1].seq, cands[n-1].msg.UID
	}
	static, ok := staticCriteria(criteria, maxSeq, maxUID)
	if !ok {
		return nil, errNoSearchRes
	}
	mt := &matcher{body: func(uid uint32) ([]byte, error) {
		return s.view.Body(s.ctx, st.name(), uid)
	}}
	need := criteriaNeedSummary(static)
	data := &imap.SearchData{}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for len(cands) > 0 {
		batch := cands[:min(len(cands), summaryBatch)]
		cands = cands[len(batch):]
		if need {
			if err := s.withSummaries(batch); err != nil {
				return nil, s.toIMAP("search", err, false)
			}
		}
		for _, t := range batch {
			if !mt.match(&candidate{seq: t.seq, msg: t.msg, sum: t.sum}, static) {
				continue
			}
			n := t.seq
			if kind == imapserver.NumKindUID {
				n = t.msg.UID
			}
			uids.AddNum(imap.UID(t.msg.UID))
			seqs.AddNum(t.seq)
			if data.Min == 0 || n < data.Min {
				data.Min = n
			}
			data.Max = max(data.Max, n)
			data.Count++
		}
		clear(batch) // drops the summaries
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return data, nil
}

// criteriaNeedSummary says whether c (or any criteria nested in it) tests
// header fields or the sent date, which are read from the summary. TEXT
// does not need it: it reads the whole message anyway.
func criteriaNeedSummary(c *imap.SearchCriteria) bool {
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		return true
	}
	for i := range c.Not {
		if criteriaNeedSummary(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if criteriaNeedSummary(&c.Or[i][0]) || criteriaNeedSummary(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// staticCriteria replaces "*" in sequence and UID sets by the largest
// number, recursively. It reports false for SEARCHRES's "$", which is not
// offered.
func staticCriteria(c *imap.SearchCriteria, maxSeq, maxUID uint32) (*imap.SearchCriteria, bool) {
	out := *c
	out.SeqNum = make([]imap.SeqSet, len(c.SeqNum))
	for i, set := range c.SeqNum {
		for _, r := range set {
			a, b := staticRange(r.Start, r.Stop, maxSeq)
			out.SeqNum[i] = append(out.SeqNum[i], imap.SeqRange{Start: a, Stop: b})
		}
	}
	out.UID = make([]imap.UIDSet, len(c.UID))
	for i, set := range c.UID {
		if imap.IsSearchRes(set) {
			return nil, false
		}
		for _, r := range set {
			a, b := staticRange(uint32(r.Start), uint32(r.Stop), maxUID)
			out.UID[i] = append(out.UID[i], imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(b)})
		}
	}
	out.Not = make([]imap.SearchCriteria, len(c.Not))
	for i := range c.Not {
		n, ok := staticCriteria(&c.Not[i], maxSeq, maxUID)
		if !ok {
			return nil, false
		}
		out.Not[i] = *n
	}
	out.Or = make([][2]imap.SearchCriteria, len(c.Or))
	for i := range c.Or {
		for j := range 2 {
			n, ok := staticCriteria(&c.Or[i][j], maxSeq, maxUID)
			if !ok {
				return nil, false
			}
			out.Or[i][j] = *n
		}
	}
	return &out, true
}

// candidate is one message under test, with what was loaded for it so far.
type candidate struct {
	seq uint32
	msg msgMeta
	sum *pgp.Summary // nil when not loaded or not readable: the body stands in

	header    textproto.Header
	hdrLoaded bool
	body      []byte
	bodyState int // 0 not loaded, 1 loaded, 2 failed
	decoded   []byte
	decState  int // 0 not decoded, 1 decoded
}

// matcher evaluates search criteria; body loads a message's plaintext.
type matcher struct {
	body func(uid uint32) ([]byte, error)
}

// match reports whether c satisfies every field of cr. Cheap tests run
// first so BODY/TEXT only load bodies of messages still in the running.
func (m *matcher) match(c *candidate, cr *imap.SearchCriteria) bool {
	for _, set := range cr.SeqNum {
		if !set.Contains(c.seq) {
			return false
		}
	}
	for _, set := range cr.UID {
		if !set.Contains(imap.UID(c.msg.UID)) {
			return false
		}
	}
	if !matchFlags(c.msg.Flags, cr) || !matchDates(c, cr) {
		return false
	}
	if cr.Larger > 0 && c.msg.Size <= cr.Larger {
		return false
	}
	if cr.Smaller > 0 && c.msg.Size >= cr.Smaller {
		return false
	}
	for _, f := range cr.Header {
		if !m.matchHeader(c, f) {
			return false
		}
	}
	for i := range cr.Not {
		if m.match(c, &cr.Not[i]) {
			return false
		}
	}
	for i := range cr.Or {
		if !m.match(c, &cr.Or[i][0]) && !m.match(c, &cr.Or[i][1]) {
			return false
		}
	}
	for _, t := range cr.Body {
		if !m.matchText(c, t, false) {
			return false
		}
	}
	for _, t := range cr.Text {
		if !m.matchText(c, t, true) {
			return false
		}
	}
	return true
}

func matchFlags(flags []string, cr *imap.SearchCriteria) bool {
	for _, f := range cr.Flag {
		if f == flagRecent || !hasFlag(flags, string(f)) {
			return false
		}
	}
	for _, f := range cr.NotFlag {
		if f != flagRecent && hasFlag(flags, string(f)) {
			return false
		}
	}
	return true
}

// day keeps only the calendar date: SEARCH ignores time and zone.
func day(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func matchDates(c *candidate, cr *imap.SearchCriteria) bool {
	if !cr.Since.IsZero() && day(c.msg.InternalDate).Before(day(cr.Since)) {
		return false
	}
	if !cr.Before.IsZero() && !day(c.msg.InternalDate).Before(day(cr.Before)) {
		return false
	}
	if cr.SentSince.IsZero() && cr.SentBefore.IsZero() {
		return true
	}
	var sent time.Time
	if c.sum != nil {
		sent = c.sum.Envelope.Date
	}
	if sent.IsZero() {
		sent = c.msg.InternalDate // RFC 9051 leaves this open; Dovecot does the same
	}
	if !cr.SentSince.IsZero() && day(sent).Before(day(cr.SentSince)) {
		return false
	}
	return cr.SentBefore.IsZero() || day(sent).Before(day(cr.SentBefore))
}

func (m *matcher) loadBody(c *candidate) []byte {
	if c.bodyState == 0 {
		b, err := m.body(c.msg.UID)
		if err != nil {
			c.bodyState = 2
			return nil
		}
		c.body, c.bodyState = b, 1
	}
	return c.body
}

func (m *matcher) loadHeader(c *candidate) textproto.Header {
	if c.hdrLoaded {
		return c.header
	}
	c.hdrLoaded = true
	var raw []byte
	if c.sum != nil {
		raw = terminateHeader(c.sum.Header)
	} else {
		raw = m.loadBody(c)
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err == nil {
		c.header = h
	}
	return c.header
}

var wordDecoder = mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	if message.CharsetReader == nil {
		return nil, errUnknownCharset
	}
	return message.CharsetReader(charset, r)
}}

var errUnknownCharset = errors.New("imapd: unknown charset")

func (m *matcher) matchHeader(c *candidate, f imap.SearchCriteriaHeaderField) bool {
	h := m.loadHeader(c)
	for fields := h.FieldsByKey(f.Key); fields.Next(); {
		if f.Value == "" {
			return true
		}
		v := fields.Value()
		if dec, err := wordDecoder.DecodeHeader(v); err == nil {
			v = dec
		}
		if containsFold([]byte(v), f.Value) {
			return true
		}
	}
	return false
}

// matchText looks for t in the body (after the header) or, with whole, in
// the entire message; encoded parts are decoded when the raw bytes miss.
func (m *matcher) matchText(c *candidate, t string, whole bool) bool {
	body := m.loadBody(c)
	if whole && c.sum != nil && containsFold(c.sum.Header, t) {
		return true
	}
	start := headerEnd(body)
	if whole {
		start = 0
	}
	if containsFold(body[start:], t) {
		return true
	}
	if c.decState == 0 {
		c.decState = 1
		c.decoded = decodedText(body)
	}
	return containsFold(c.decoded, t)
}

// headerEnd returns where the body of a message starts.
func headerEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return len(b)
}

// decodedText returns the transfer- and charset-decoded text parts of a
// message that has any encoded part, nil otherwise.
func decodedText(raw []byte) []byte {
	if !containsFold(raw, "base64") && !containsFold(raw, "quoted-printable") {
		return nil
	}
	e, err := message.Read(bytes.NewReader(raw))
	if e == nil {
		return nil
	}
	_ = err // unknown charsets still give a readable entity
	var out bytes.Buffer
	_ = e.Walk(func(_ []int, part *message.Entity, _ error) error {
		t, _, _ := part.Header.ContentType()
		if part.MultipartReader() != nil || (t != "" && !strings.HasPrefix(t, "text/")) {
			return nil
		}
		_, err := io.Copy(&out, io.LimitReader(part.Body, int64(maxDecoded-out.Len())))
		_ = err // a broken part contributes what decoded
		out.WriteByte('\n')
		if out.Len() >= maxDecoded {
			return io.EOF
		}
		return nil
	})
	return out.Bytes()
}

// containsFold reports whether needle occurs in hay, ignoring case. ASCII
// needles are searched without allocating; others fold both sides.
func containsFold(hay []byte, needle string) bool {
	if needle == "" {
		return true
	}
	if !isASCII(needle) {
		return bytes.Contains(bytes.ToLower(hay), []byte(strings.ToLower(needle)))
	}
	n := []byte(needle)
	if len(hay) < len(n) {
		return false
	}
	last := len(hay) - len(n) + 1
	lo, up := toLowerASCII(n[0]), toUpperASCII(n[0])
	// Next occurrence of each case of the first byte; -1 once exhausted.
	// Each is advanced only when passed, so the scan stays linear.
	nextLo, nextUp := nextByte(hay, 0, last, lo), -1
	if up != lo {
		nextUp = nextByte(hay, 0, last, up)
	}
	for {
		i := nextLo
		if i < 0 || (nextUp >= 0 && nextUp < i) {
			i = nextUp
		}
		if i < 0 {
			return false
		}
		if bytes.EqualFold(hay[i:i+len(n)], n) {
			return true
		}
		if i == nextLo {
			nextLo = nextByte(hay, i+1, last, lo)
		} else {
			nextUp = nextByte(hay, i+1, last, up)
		}
	}
}

// nextByte is the index of c in hay[from:end], or -1.
func nextByte(hay []byte, from, end int, c byte) int {
	if from >= end {
		return -1
	}
	if k := bytes.IndexByte(hay[from:end], c); k >= 0 {
		return from + k
	}
	return -1
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func toLowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func toUpperASCII(b byte) byte {
	if 'a' <= b && b <= 'z' {
		return b - ('a' - 'A')
	}
	return b
}
