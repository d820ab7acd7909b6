package pgp

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// The summary layout, version 1. Every integer is a varint (signed) or
// uvarint (unsigned); every string or byte string is a uvarint length and
// the bytes; maps are a count and the entries sorted by key, so that one
// Summary has exactly one encoding.
//
//	magic "sMS" | uvarint version | bytes Header | varint Size |
//	string Preview | byte Encrypted | envelope | part
//	envelope = byte hasDate [varint unix seconds, varint zone offset] |
//	           string Subject | 6 address lists | string list InReplyTo |
//	           string MessageID
//	part     = strings Type Subtype | map Params | strings ID Description
//	           Encoding | varints Size Lines | string MD5 | string
//	           Disposition | map DispositionParams | string list Language |
//	           string Location | uvarint #Children, parts | byte kind
//	           (0 none, 1 message/rfc822: envelope, part)
var summaryMagic = []byte("sMS")

// maxSummaryBytes bounds DecodeSummary's input: a header blob is small.
const maxSummaryBytes = 16 << 20

type enc struct{ b []byte }

func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)     { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) strs(v []string) {
	e.uvarint(uint64(len(v)))
	for _, s := range v {
		e.str(s)
	}
}

func (e *enc) smap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

func (e *enc) addrs(l []Address) {
	e.uvarint(uint64(len(l)))
	for _, a := range l {
		e.str(a.Name)
		e.str(a.Mailbox)
		e.str(a.Host)
	}
}

func (e *enc) envelope(v *Envelope) {
	e.bool(!v.Date.IsZero())
	if !v.Date.IsZero() {
		_, off := v.Date.Zone()
		e.varint(v.Date.Unix())
		e.varint(int64(off))
	}
	e.str(v.Subject)
	for _, l := range [][]Address{v.From, v.Sender, v.ReplyTo, v.To, v.Cc, v.Bcc} {
		e.addrs(l)
	}
	e.strs(v.InReplyTo)
	e.str(v.MessageID)
}

func (e *enc) part(p *Part) {
	e.str(p.Type)
	e.str(p.Subtype)
	e.smap(p.Params)
	e.str(p.ID)
	e.str(p.Description)
	e.str(p.Encoding)
	e.varint(p.Size)
	e.varint(p.Lines)
	e.str(p.MD5)
	e.str(p.Disposition)
	e.smap(p.DispositionParams)
	e.strs(p.Language)
	e.str(p.Location)
	e.uvarint(uint64(len(p.Children)))
	for i := range p.Children {
		e.part(&p.Children[i])
	}
	if p.Envelope != nil && p.Inner != nil {
		e.b = append(e.b, 1)
		e.envelope(p.Envelope)
		e.part(p.Inner)
	} else {
		e.b = append(e.b, 0)
	}
}

// EncodeSummary returns the deterministic, versioned binary encoding of s.
func EncodeSummary(s *Summary) []byte {
	e := &enc{b: make([]byte, 0, len(s.Header)+len(s.Preview)+512)}
	e.b = append(e.b, summaryMagic...)
	e.uvarint(SummaryVersion)
	e.bytes(s.Header)
	e.varint(s.Size)
	e.str(s.Preview)
	e.bool(s.Encrypted)
	e.envelope(&s.Envelope)
	e.part(&s.Structure)
	return e.b
}

// dec reads the layout; the first error sticks and later reads return
// zero values, so the decoding functions stay linear.
type dec struct {
	b     []byte
	err   error
	parts int
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errNotSummary, what)
	}
	d.b = nil
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	// Overlong forms are refused so that the encoding stays unique.
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || n != len(binary.AppendVarint(nil, v)) {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) raw() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string { return string(d.raw()) }

func (d *dec) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("flag")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// count reads an element count; each element takes at least one byte, so a
// count larger than the remaining input is rejected before allocating.
func (d *dec) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *dec) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
}

func (d *dec) smap() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make(map[string]string, n)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		if i > 0 && k <= prev {
			d.fail("map order") // keeps the encoding unique
		}
		out[k], prev = d.str(), k
	}
	return out
}

func (d *dec) addrs() []Address {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]Address, n)
	for i := range out {
		out[i] = Address{Name: d.str(), Mailbox: d.str(), Host: d.str()}
	}
	return out
}

func (d *dec) envelope() Envelope {
	var v Envelope
	if d.bool() {
		sec, off := d.varint(), d.varint()
		if off < -24*3600 || off > 24*3600 || sec < -1<<40 || sec > 1<<40 {
			d.fail("date")
		} else {
			v.Date = time.Unix(sec, 0).In(time.FixedZone("", int(off)))
		}
	}
	v.Subject = d.str()
	for _, l := range []*[]Address{&v.From, &v.Sender, &v.ReplyTo, &v.To, &v.Cc, &v.Bcc} {
		*l = d.addrs()
	}
	v.InReplyTo = d.strs()
	v.MessageID = d.str()
	return v
}

func (d *dec) part(depth int) Part {
	d.parts++
	if d.parts > MaxParts || depth > MaxDepth {
		d.fail("structure size")
		return Part{}
	}
	p := Part{Type: d.str(), Subtype: d.str(), Params: d.smap(), ID: d.str(), Description: d.str(),
		Encoding: d.str(), Size: d.varint(), Lines: d.varint(), MD5: d.str(), Disposition: d.str(),
		DispositionParams: d.smap(), Language: d.strs(), Location: d.str()}
	if n := d.count(); n > 0 {
		p.Children = make([]Part, 0, min(n, 64))
		for i := 0; i < n && d.err == nil; i++ {
			p.Children = append(p.Children, d.part(depth+1))
		}
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("part kind")
		return p
	}
	kind := d.b[0]
	d.b = d.b[1:]
	if kind == 1 {
		env := d.envelope()
		inner := d.part(depth + 1)
		p.Envelope, p.Inner = &env, &inner
	}
	return p
}

// DecodeSummary parses the output of EncodeSummary. Input that is not a
// valid encoding of this version, including trailing bytes, is an error.
func DecodeSummary(b []byte) (*Summary, error) {
	if len(b) > maxSummaryBytes {
		return nil, fmt.Errorf("%w: too large", errNotSummary)
	}
	if len(b) < len(summaryMagic) || string(b[:len(summaryMagic)]) != string(summaryMagic) {
		return nil, fmt.Errorf("%w: bad magic", errNotSummary)
	}
	d := &dec{b: b[len(summaryMagic):]}
	if v := d.uvarint(); d.err == nil && v != SummaryVersion {
		return nil, fmt.Errorf("%w: unsupported version %d", errNotSummary, v)
	}
	s := &Summary{Version: SummaryVersion}
	s.Header = d.raw()
	s.Size = d.varint()
	s.Preview = d.str()
	s.Encrypted = d.bool()
	s.Envelope = d.envelope()
	s.Structure = d.part(0)
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing data")
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

// SealMessage summarizes raw and seals the summary (the header blob) and
// the whole message (the body blob) to the owner keys, for storage.
//
// Stored blobs use SEIPDv2 (AEAD, RFC 9580 section 5.13.2) whenever every
// owner key advertises it, as the keys GenerateKey makes do, whatever
// opt.AEAD says; opt.ForceSEIPDv1 keeps SEIPDv1. AEAD authenticates each
// chunk, so OpenStream can stream a large body without buffering it.
// (Mail to the outside, BuildEncrypted, uses SEIPDv1, which GnuPG 2.2
// reads.) Both blobs share one session key, wrapped once; see session.
func SealMessage(raw []byte, owner []*Key, opt SealOptions) (headerBlob, bodyBlob []byte, sum *Summary, err error) {
	sum, err = Summarize(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	headerBlob, bodyBlob, err = SealBlobs(EncodeSummary(sum), raw, owner, opt)
	if err != nil {
		return nil, nil, nil, err
	}
	return headerBlob, bodyBlob, sum, nil
}

// SealBlobs seals an encoded summary (EncodeSummary) and the message it
// summarizes as a header blob and a body blob, as SealMessage does, for a
// caller that seals one summary to several recipients in turn: it
// summarizes once and calls SealBlobs per recipient, and each recipient's
// pair shares one wrapped session key (one public-key operation, not two).
func SealBlobs(summary, raw []byte, owner []*Key, opt SealOptions) (headerBlob, bodyBlob []byte, err error) {
	s, err := newSession(owner, !opt.ForceSEIPDv1)
	if err != nil {
		return nil, nil, err
	}
	if headerBlob, err = s.seal(summary, opt.Signer); err != nil {
		return nil, nil, err
	}
	if bodyBlob, err = s.seal(raw, opt.Signer); err != nil {
		return nil, nil, err
	}
	return headerBlob, bodyBlob, nil
}

// OpenHeaderBlob decrypts and decodes a header blob.
func OpenHeaderBlob(blob []byte, key *Key) (*Summary, error) {
	o, err := Open(blob, key, OpenOptions{MaxSize: maxSummaryBytes})
	if err != nil {
		return nil, err
	}
	return DecodeSummary(o.Plaintext)
}

// OpenBodyBlob decrypts a body blob, returning the raw message.
func OpenBodyBlob(blob []byte, key *Key) ([]byte, error) {
	o, err := Open(blob, key, OpenOptions{})
	if err != nil {
		return nil, err
	}
	return o.Plaintext, nil
}
