package pgp

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Decrypted is the result of DecryptMessage.
type Decrypted struct {
	// Message is the restored RFC 5322 message, or the input unchanged.
	Message []byte
	// Encrypted reports whether the input was encrypted (and decrypted).
	Encrypted bool
	// Signature is the outcome of the embedded or multipart/signed
	// signature; SigUnsigned if there was none.
	Signature         SigStatus
	SignerFingerprint string
}

// DecryptMessage decrypts a PGP/MIME (RFC 3156) or whole-body inline-PGP
// message with key and restores the protected headers (RFC 9788). Only the
// top level is considered: an encrypted part inside some other structure
// is never decrypted and spliced among unencrypted parts (EFAIL). Input
// that is not encrypted is returned unchanged with Encrypted false; a
// top-level multipart/signed is then verified against verifiers.
func DecryptMessage(msg []byte, key *Key, verifiers []*Key) (*Decrypted, error) {
	_, body, h := splitMessage(msg)
	mh := message.Header{Header: h}
	t, params, err := mh.ContentType()
	if err != nil {
		t = "text/plain"
	}
	switch {
	case t == "multipart/encrypted" && strings.EqualFold(params["protocol"], "application/pgp-encrypted"):
		return decryptPGPMIME(h, body, params["boundary"], key, verifiers)
	case t == "multipart/signed" && strings.EqualFold(params["protocol"], "application/pgp-signature"):
		st, fp := verifySigned(body, params["boundary"], append([]*Key{key}, verifiers...))
		return &Decrypted{Message: msg, Signature: st, SignerFingerprint: fp}, nil
	case t == "text/plain" || h.Len() == 0:
		text := transferDecoded(mh, body)
		if isInlineArmor(text) {
			return decryptInline(h, text, key, verifiers)
		}
	}
	return &Decrypted{Message: msg}, nil
}

func transferDecoded(mh message.Header, body []byte) []byte {
	e, err := message.New(mh, bytes.NewReader(body))
	if err != nil && !message.IsUnknownCharset(err) {
		return body
	}
	b, err := io.ReadAll(io.LimitReader(e.Body, maxArmoredPart))
	if err != nil {
		return body
	}
	return b
}

// openArmored decrypts one armored PGP MESSAGE.
func openArmored(data []byte, key *Key, verifiers []*Key) (*Opened, error) {
	typ, bin, err := dearmor(data, maxArmoredPart)
	if err != nil {
		return nil, err
	}
	if typ != "MESSAGE" {
		return nil, fmt.Errorf("%w: armor type %q is not a message", ErrMalformed, typ)
	}
	return Open(bin, key, OpenOptions{Verifiers: verifiers})
}

func decryptPGPMIME(h textproto.Header, body []byte, boundary string, key *Key, verifiers []*Key) (*Decrypted, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: no boundary", errNotPGPMIME)
	}
	mr := textproto.NewMultipartReader(bytes.NewReader(body), boundary)
	var parts [][]byte
	for len(parts) < 3 {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, err := io.ReadAll(io.LimitReader(p, maxArmoredPart))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotPGPMIME, err)
		}
		parts = append(parts, b)
	}
	if len(parts) != 2 || !bytes.Contains(parts[0], []byte("Version: 1")) {
		return nil, fmt.Errorf("%w: expected a version part and a data part", errNotPGPMIME)
	}
	o, err := openArmored(parts[1], key, verifiers)
	if err != nil {
		return nil, err
	}
	_, ibody, inner := splitMessage(o.Plaintext)
	st, fp := o.Signature, o.SignerFingerprint
	// Sign-then-encrypt (RFC 3156 section 6.1): unwrap a signed payload.
	imh := message.Header{Header: inner}
	if t, params, err := imh.ContentType(); err == nil && t == "multipart/signed" {
		if raw, ok := firstRawPart(ibody, params["boundary"]); ok {
			st, fp = verifySigned(ibody, params["boundary"], append([]*Key{key}, verifiers...))
			_, ibody, inner = splitMessage(raw)
		}
	}
	return &Decrypted{Message: restore(h, inner, ibody), Encrypted: true, Signature: st, SignerFingerprint: fp}, nil
}

func decryptInline(h textproto.Header, armored []byte, key *Key, verifiers []*Key) (*Decrypted, error) {
	o, err := openArmored(armored, key, verifiers)
	if err != nil {
		return nil, err
	}
	var inner textproto.Header
	inner.Set("Content-Transfer-Encoding", "8bit")
	inner.Set("Content-Type", "text/plain; charset=utf-8")
	return &Decrypted{Message: restore(h, inner, o.Plaintext), Encrypted: true,
		Signature: o.Signature, SignerFingerprint: o.SignerFingerprint}, nil
}

// restore builds the decrypted message: the outer header without its
// content fields, overridden by the inner protected fields when the inner
// Content-Type says hp (RFC 9788 section 4.3), then the inner content
// fields and body.
func restore(outer, inner textproto.Header, body []byte) []byte {
	imh := message.Header{Header: inner}
	t, params, err := imh.ContentType()
	_, hasHP := params["hp"]
	var fields [][2]string
	override := map[string]bool{}
	if err == nil && hasHP {
		for f := inner.Fields(); f.Next(); {
			if isProtected(f.Key()) {
				override[strings.ToLower(f.Key())] = true
			}
		}
	}
	for f := outer.Fields(); f.Next(); {
		k := f.Key()
		if isContentField(k) || override[strings.ToLower(k)] {
			continue
		}
		fields = append(fields, [2]string{k, f.Value()})
	}
	for f := inner.Fields(); f.Next(); {
		k := f.Key()
		if isContentField(k) || (hasHP && isProtected(k)) {
			if strings.EqualFold(k, "Content-Type") && hasHP {
				delete(params, "hp")
				fields = append(fields, [2]string{k, formatContentType(t, params)})
				continue
			}
			fields = append(fields, [2]string{k, f.Value()})
		}
	}
	var out textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		out.Add(fields[i][0], fields[i][1])
	}
	var buf bytes.Buffer
	_ = textproto.WriteHeader(&buf, out)
	buf.Write(body)
	return buf.Bytes()
}

func formatContentType(t string, params map[string]string) string {
	var h message.Header
	h.SetContentType(t, params)
	return h.Get("Content-Type")
}

// rawParts splits a multipart body into the raw bytes of its parts,
// headers included, exactly as they appear (RFC 2046 section 5.1.1): what
// a detached signature covers.
func rawParts(body []byte, boundary string, max int) [][]byte {
	if boundary == "" {
		return nil
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	lines := bytes.SplitAfter(body, []byte("\n"))
	start, pos := -1, 0
	for _, line := range lines {
		trimmed := bytes.TrimRight(line, " \t\r\n")
		if bytes.HasPrefix(trimmed, delim) {
			rest := trimmed[len(delim):]
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				if start >= 0 {
					end := pos
					if end > start && body[end-1] == '\n' {
						end--
						if end > start && body[end-1] == '\r' {
							end--
						}
					}
					parts = append(parts, body[start:end])
					if len(parts) >= max {
						return parts
					}
				}
				if len(rest) == 2 {
					return parts
				}
				start = pos + len(line)
			}
		}
		pos += len(line)
	}
	return parts
}

func firstRawPart(body []byte, boundary string) ([]byte, bool) {
	p := rawParts(body, boundary, 2)
	if len(p) != 2 {
		return nil, false
	}
	return p[0], true
}

// verifySigned checks a multipart/signed body (RFC 3156 section 5).
func verifySigned(body []byte, boundary string, keys []*Key) (SigStatus, string) {
	p := rawParts(body, boundary, 2)
	if len(p) != 2 {
		return SigInvalid, ""
	}
	_, sigBody, _ := splitMessage(p[1])
	typ, sig, err := dearmor(sigBody, maxSignatureBytes)
	if err != nil || typ != "SIGNATURE" {
		return SigInvalid, ""
	}
	var el openpgp.EntityList
	for _, k := range keys {
		if k != nil {
			el = append(el, k.entity)
		}
	}
	// RFC 3156 section 5: the signed part is verified in canonical form,
	// CRLF line endings, whatever a mail store or MTA converted them to on
	// the way (mbox files, maildir on Unix, "\n" from an IMAP client).
	signer, err := openpgp.CheckDetachedSignature(el, bytes.NewReader(crlf(p[0])), bytes.NewReader(sig), nil)
	switch {
	case err == nil && signer != nil:
		return SigValid, fingerprintOf(signer)
	case err == pgperrors.ErrUnknownIssuer:
		return SigUnknownSigner, ""
	case signer != nil:
		return SigInvalid, fingerprintOf(signer)
	}
	return SigInvalid, ""
}
