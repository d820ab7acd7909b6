package imapd

import (
	"bytes"
	"errors"
	"io"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// summaryBatch is how many summaries FETCH and SEARCH ask the view for at
// once, and so about how many they hold: the selected mailbox keeps none.
const summaryBatch = 500

// Fetch implements imapserver.Session. Items answered from the header-blob
// summary never touch View.Body; anything else loads the body once per
// message and cuts sections out of it. Summaries are read from the view a
// batch at a time, only when an item needs them.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	ts := s.resolve(numSet)
	if err := s.markSeen(ts, options); err != nil {
		return err
	}
	need := needsSummary(options)
	for len(ts) > 0 {
		n := min(len(ts), summaryBatch)
		batch := ts[:n]
		if need {
			if err := s.withSummaries(batch); err != nil {
				return s.toIMAP("fetch", err, false)
			}
		}
		for i := range batch {
			if err := s.fetchOne(w, batch[i], options); err != nil {
				return err
			}
			batch[i].sum = nil
		}
		ts = ts[n:]
	}
	return nil
}

// needsSummary says whether any requested item is answered from the
// summary.
func needsSummary(options *imap.FetchOptions) bool {
	if options.Envelope || options.BodyStructure != nil {
		return true
	}
	for _, bs := range options.BodySection {
		if headerOnly(bs) {
			return true
		}
	}
	return false
}

// withSummaries loads the summaries of ts (at most summaryBatch) from the
// view. A message expunged meanwhile keeps a nil summary: its body is then
// not found either, and it is skipped.
func (s *session) withSummaries(ts []target) error {
	uids := uidsOf(ts)
	var sums []*pgp.Summary
	err := s.onSelected(func(mailbox string) (err error) {
		sums, err = s.view.Summaries(s.ctx, mailbox, uids)
		return err
	})
	if err != nil {
		return err
	}
	if len(sums) != len(ts) {
		return errSummaryCount
	}
	for i := range ts {
		ts[i].sum = sums[i]
	}
	return nil
}

// markSeen sets \Seen on messages whose body is fetched without PEEK
// (RFC 9051 6.4.5), in one view call, before anything is written.
func (s *session) markSeen(ts []target, options *imap.FetchOptions) error {
	if s.sel.readOnly || !setsSeen(options) {
		return nil
	}
	var uids []uint32
	for _, t := range ts {
		if !hasFlag(t.msg.Flags, string(imap.FlagSeen)) {
			uids = append(uids, t.msg.UID)
		}
	}
	if len(uids) == 0 {
		return nil
	}
	seen := []string{string(imap.FlagSeen)}
	err := s.onSelected(func(mailbox string) error { return s.view.StoreFlags(s.ctx, mailbox, uids, flagsAdd, seen) })
	if err != nil {
		return s.toIMAP("fetch", err, false)
	}
	for i := range ts {
		if !hasFlag(ts[i].msg.Flags, string(imap.FlagSeen)) {
			ts[i].msg.Flags = applyFlags(ts[i].msg.Flags, flagsAdd, seen)
			s.sel.st.setFlags(ts[i].msg.UID, ts[i].msg.Flags, s.sel.tr)
		}
	}
	options.Flags = true // the client must learn of the change
	return nil
}

func setsSeen(options *imap.FetchOptions) bool {
	for _, bs := range options.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range options.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// needsBody says whether any requested item needs more than the summary.
func needsBody(options *imap.FetchOptions, t target) bool {
	if t.sum == nil && (options.Envelope || options.BodyStructure != nil) {
		return true
	}
	if len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0 {
		return true
	}
	for _, bs := range options.BodySection {
		if !headerOnly(bs) || t.sum == nil {
			return true
		}
	}
	return false
}

// headerOnly is true for BODY[HEADER], BODY[HEADER.FIELDS (…)] and
// BODY[HEADER.FIELDS.NOT (…)] of the top-level message.
func headerOnly(bs *imap.FetchItemBodySection) bool {
	return len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierHeader
}

func (s *session) fetchOne(w *imapserver.FetchWriter, t target, options *imap.FetchOptions) error {
	var body []byte
	if needsBody(options, t) {
		var b []byte
		err := s.onSelected(func(mailbox string) (err error) {
			b, err = s.view.Body(s.ctx, mailbox, t.msg.UID)
			return err
		})
		if errors.Is(err, store.ErrMessageNotFound) || errors.Is(err, store.ErrNotFound) {
			// Expunged meanwhile: its EXPUNGE follows, so skipping it is
			// what the client expects.
			return nil
		}
		if err != nil {
			// Anything else fails the FETCH: silently leaving the message
			// out would make a syncing client (mbsync) believe it is gone.
			return s.toIMAP("fetch body", err, false)
		}
		body = b
	}
	rw := w.CreateMessage(t.seq)
	if options.UID {
		rw.WriteUID(imap.UID(t.msg.UID))
	}
	if options.Flags {
		rw.WriteFlags(toFlags(t.msg.Flags))
	}
	if options.InternalDate {
		rw.WriteInternalDate(t.msg.InternalDate)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(t.msg.Size)
	}
	if options.Envelope {
		rw.WriteEnvelope(envelopeOf(t.sum, body))
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(bodyStructureOf(t.sum, body))
	}
	for _, bs := range options.BodySection {
		var data []byte
		switch {
		case headerOnly(bs) && t.sum != nil:
			data = headerSection(t.sum.Header, bs)
		case len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierNone:
			data = partial(body, bs.Partial) // BODY[]: no parsing at all
		default:
			data = imapserver.ExtractBodySection(bytes.NewReader(body), bs)
		}
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(data))), data); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		data := imapserver.ExtractBinarySection(bytes.NewReader(body), bs)
		if err := writeLiteral(rw.WriteBinarySection(bs, int64(len(data))), data); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(body), bss))
	}
	return rw.Close()
}

func writeLiteral(wc io.WriteCloser, data []byte) error {
	if _, err := wc.Write(data); err != nil {
		wc.Close()
		return err
	}
	return wc.Close()
}

// partial cuts <offset.size> out of b (RFC 9051 6.4.5).
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) || p.Offset < 0 {
		return nil
	}
	end := p.Offset + p.Size
	if end > int64(len(b)) || p.Size < 0 {
		end = int64(len(b))
	}
	return b[p.Offset:end]
}

// headerSection answers BODY[HEADER…] from the cached header section. The
// header is given an empty body so the section keeps its closing blank line.
func headerSection(header []byte, bs *imap.FetchItemBodySection) []byte {
	h := terminateHeader(header)
	if len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0 {
		return partial(h, bs.Partial)
	}
	return imapserver.ExtractBodySection(bytes.NewReader(h), bs)
}

// terminateHeader makes sure a header section ends with the empty line that
// separates it from the body.
func terminateHeader(h []byte) []byte {
	switch {
	case len(h) == 0:
		return []byte("\r\n")
	case bytes.HasSuffix(h, []byte("\r\n\r\n")), bytes.HasSuffix(h, []byte("\n\n")):
		return h
	case bytes.HasSuffix(h, []byte("\r\n")):
		return append(h[:len(h):len(h)], '\r', '\n')
	case bytes.HasSuffix(h, []byte("\n")):
		return append(h[:len(h):len(h)], '\n')
	}
	return append(h[:len(h):len(h)], "\r\n\r\n"...)
}
