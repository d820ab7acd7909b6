package imapd

import (
	"bufio"
	"bytes"
	"math"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"smessenger/pgp"
)

// maxDepth bounds the nesting converted, so a hostile summary cannot make
// the writer recurse without end; deeper parts become opaque attachments.
const maxDepth = 32

// envelopeOf returns the ENVELOPE of a message: from its summary, or parsed
// from body when there is no summary.
func envelopeOf(sum *pgp.Summary, body []byte) *imap.Envelope {
	if sum == nil {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body)))
		if err != nil {
			return &imap.Envelope{}
		}
		return imapserver.ExtractEnvelope(h)
	}
	return convertEnvelope(&sum.Envelope)
}

// bodyStructureOf returns the BODYSTRUCTURE (with extension data) of a
// message: from its summary, or parsed from body when there is no summary.
func bodyStructureOf(sum *pgp.Summary, body []byte) imap.BodyStructure {
	if sum == nil {
		return fixStructure(imapserver.ExtractBodyStructure(bytes.NewReader(body)), 0)
	}
	return convertPart(&sum.Structure, 0)
}

func convertEnvelope(e *pgp.Envelope) *imap.Envelope {
	if e == nil {
		return &imap.Envelope{}
	}
	out := &imap.Envelope{
		Date:      e.Date,
		Subject:   e.Subject,
		From:      convertAddrs(e.From),
		Sender:    convertAddrs(e.Sender),
		ReplyTo:   convertAddrs(e.ReplyTo),
		To:        convertAddrs(e.To),
		Cc:        convertAddrs(e.Cc),
		Bcc:       convertAddrs(e.Bcc),
		MessageID: stripAngles(e.MessageID),
	}
	for _, id := range e.InReplyTo {
		if id = stripAngles(id); id != "" {
			out.InReplyTo = append(out.InReplyTo, id)
		}
	}
	return out
}

// stripAngles removes the brackets the writer puts back around message IDs.
func stripAngles(id string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
}

func convertAddrs(in []pgp.Address) []imap.Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]imap.Address, len(in))
	for i, a := range in {
		out[i] = imap.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host}
	}
	return out
}

// convertPart turns one summary part into go-imap's body structure, always
// with extension data so both BODY and BODYSTRUCTURE can be written from it.
func convertPart(p *pgp.Part, depth int) imap.BodyStructure {
	typ, sub := strings.ToLower(p.Type), strings.ToLower(p.Subtype)
	if depth >= maxDepth {
		typ, sub = "application", "octet-stream"
	}
	if typ == "multipart" && depth < maxDepth {
		mp := &imap.BodyStructureMultiPart{
			Subtype: nonEmpty(sub, "mixed"),
			Extended: &imap.BodyStructureMultiPartExt{
				Params:      p.Params,
				Disposition: disposition(p),
				Language:    p.Language,
				Location:    p.Location,
			},
		}
		for i := range p.Children {
			mp.Children = append(mp.Children, convertPart(&p.Children[i], depth+1))
		}
		if len(mp.Children) == 0 {
			// The grammar needs at least one body part.
			mp.Children = []imap.BodyStructure{emptyText()}
		}
		return mp
	}
	if typ == "" || typ == "multipart" {
		typ, sub = "text", "plain"
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     nonEmpty(sub, "plain"),
		Params:      p.Params,
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        clampU32(p.Size),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disposition(p),
			Language:    p.Language,
			Location:    p.Location,
		},
	}
	switch {
	case typ == "message" && (sub == "rfc822" || sub == "global"):
		inner := imap.BodyStructure(emptyText())
		if p.Inner != nil {
			inner = convertPart(p.Inner, depth+1)
		}
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      convertEnvelope(p.Envelope),
			BodyStructure: inner,
			NumLines:      max(p.Lines, 0),
		}
	case typ == "text":
		sp.Text = &imap.BodyStructureText{NumLines: max(p.Lines, 0)}
	}
	return sp
}

func emptyText() *imap.BodyStructureSinglePart {
	return &imap.BodyStructureSinglePart{Type: "text", Subtype: "plain", Text: &imap.BodyStructureText{},
		Extended: &imap.BodyStructureSinglePartExt{}}
}

func disposition(p *pgp.Part) *imap.BodyStructureDisposition {
	if p.Disposition == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispositionParams}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func clampU32(n int64) uint32 {
	switch {
	case n < 0:
		return 0
	case n > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(n)
}

// fixStructure makes a parsed structure safe for imapserver's writer, which
// panics on a multipart without children or a part without extension data.
func fixStructure(bs imap.BodyStructure, depth int) imap.BodyStructure {
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if depth >= maxDepth {
			return emptyText()
		}
		for i, c := range b.Children {
			b.Children[i] = fixStructure(c, depth+1)
		}
		if len(b.Children) == 0 {
			b.Children = []imap.BodyStructure{emptyText()}
		}
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureMultiPartExt{}
		}
		b.Subtype = nonEmpty(b.Subtype, "mixed")
		return b
	case *imap.BodyStructureSinglePart:
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureSinglePartExt{}
		}
		if b.Type == "" || b.Subtype == "" {
			b.Type, b.Subtype = "text", "plain"
		}
		if m := b.MessageRFC822; m != nil {
			if m.BodyStructure == nil || depth >= maxDepth {
				m.BodyStructure = emptyText()
			} else {
				m.BodyStructure = fixStructure(m.BodyStructure, depth+1)
			}
		}
		return b
	}
	return emptyText()
}
