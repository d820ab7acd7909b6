package pgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// protectedFields are the header fields carried inside the cryptographic
// payload (RFC 9788 section 4.1) and restored from it on reading.
var protectedFields = []string{"Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-Id",
	"In-Reply-To", "References", "Followup-To", "Keywords", "Comments"}

// obscuredSubject replaces the outer Subject of an encrypted message.
const obscuredSubject = "..."

// maxArmoredPart bounds the armored payload read from a PGP/MIME part.
const maxArmoredPart = 128 << 20

// maxSignatureBytes bounds a detached signature: one signature packet is a
// few hundred bytes, a handful of them far less than this.
const maxSignatureBytes = 64 << 10

func isContentField(k string) bool {
	k = strings.ToLower(k)
	return strings.HasPrefix(k, "content-") || k == "mime-version"
}

func isProtected(k string) bool {
	for _, p := range protectedFields {
		if strings.EqualFold(p, k) {
			return true
		}
	}
	return false
}

// innerEntity builds the cryptographic payload of RFC 9788: the original
// Content-* fields and body, with the protected header fields copied in and
// hp set on the Content-Type. A single-part 8-bit body is re-encoded as
// quoted-printable so that signatures survive 7-bit transport (RFC 3156
// section 3).
func innerEntity(h textproto.Header, body []byte, hp string) []byte {
	src := message.Header{Header: h}
	t, params, err := src.ContentType()
	if err != nil || t == "" {
		t, params = "text/plain", map[string]string{"charset": "utf-8"}
	}
	if params == nil {
		params = map[string]string{}
	}
	params["hp"] = hp
	enc := strings.ToLower(h.Get("Content-Transfer-Encoding"))
	if !strings.HasPrefix(t, "multipart/") && !isASCII(string(body)) && (enc == "" || enc == "8bit" || enc == "binary") {
		var qp bytes.Buffer
		w := quotedprintable.NewWriter(&qp)
		_, _ = w.Write(body)
		_ = w.Close()
		body, enc = qp.Bytes(), "quoted-printable"
	}
	var keys, vals []string
	for f := h.Fields(); f.Next(); {
		k := f.Key()
		if isProtected(k) || (isContentField(k) && !strings.EqualFold(k, "Content-Type") &&
			!strings.EqualFold(k, "Content-Transfer-Encoding") && !strings.EqualFold(k, "Mime-Version")) {
			keys, vals = append(keys, k), append(vals, f.Value())
		}
	}
	var inner message.Header
	if enc != "" {
		inner.Set("Content-Transfer-Encoding", enc)
	}
	// Header.Add puts a field first, so add in reverse to keep the order.
	for i := len(keys) - 1; i >= 0; i-- {
		inner.Add(keys[i], vals[i])
	}
	inner.SetContentType(t, params)
	var out bytes.Buffer
	_ = textproto.WriteHeader(&out, inner.Header)
	out.Write(crlf(body))
	return out.Bytes()
}

// crlf normalises line endings to CRLF, the canonical form that is signed.
func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// outerHeader copies the non-content fields of h, for the envelope of a
// PGP/MIME message.
func outerHeader(h textproto.Header) textproto.Header {
	var out textproto.Header
	fields := h.Fields()
	var keys, vals []string
	for fields.Next() {
		if !isContentField(fields.Key()) {
			keys, vals = append(keys, fields.Key()), append(vals, fields.Value())
		}
	}
	// textproto.Header.Add prepends, so add in reverse to keep the order.
	for i := len(keys) - 1; i >= 0; i-- {
		out.Add(keys[i], vals[i])
	}
	out.Set("Mime-Version", "1.0")
	return out
}

// BuildEncrypted turns msg into a PGP/MIME multipart/encrypted message
// (RFC 3156 section 4) to the keys in to, signed inside by signer if not
// nil (the combined method of RFC 3156 section 6.2), with the protected
// headers of RFC 9788 inside and the outer Subject replaced by "...". It
// always uses SEIPDv1, which every OpenPGP reader handles.
func BuildEncrypted(msg []byte, to []*Key, signer *Key, autocrypt *AutocryptHeader) ([]byte, error) {
	_, body, h := splitMessage(msg)
	payload := innerEntity(h, body, "cipher")
	var armored bytes.Buffer
	aw, err := armor.Encode(&armored, "PGP MESSAGE", nil)
	if err != nil {
		return nil, fmt.Errorf("pgp: armor: %w", err)
	}
	w, err := SealStream(aw, to, SealOptions{Signer: signer})
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(payload); err != nil {
		return nil, fmt.Errorf("pgp: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("pgp: encrypt: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("pgp: armor: %w", err)
	}
	armored.WriteString("\r\n")

	outer := outerHeader(h)
	if outer.Has("Subject") {
		outer.Set("Subject", obscuredSubject)
	}
	if autocrypt != nil {
		outer.Set("Autocrypt", strings.ReplaceAll(autocrypt.String(), "\r\n", ""))
	}
	mh := message.Header{Header: outer}
	mh.SetContentType("multipart/encrypted", map[string]string{"protocol": "application/pgp-encrypted"})
	var out bytes.Buffer
	mw, err := message.CreateWriter(&out, mh)
	if err != nil {
		return nil, fmt.Errorf("pgp: mime: %w", err)
	}
	var ctl message.Header
	ctl.SetContentType("application/pgp-encrypted", nil)
	ctl.Set("Content-Description", "PGP/MIME version identification")
	if err := writePart(mw, ctl, []byte("Version: 1\r\n")); err != nil {
		return nil, err
	}
	var data message.Header
	data.SetContentType("application/octet-stream", map[string]string{"name": "encrypted.asc"})
	data.SetContentDisposition("inline", map[string]string{"filename": "encrypted.asc"})
	data.Set("Content-Description", "OpenPGP encrypted message")
	if err := writePart(mw, data, armored.Bytes()); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("pgp: mime: %w", err)
	}
	return out.Bytes(), nil
}

func writePart(mw *message.Writer, h message.Header, body []byte) error {
	pw, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("pgp: mime: %w", err)
	}
	if _, err := pw.Write(body); err != nil {
		return fmt.Errorf("pgp: mime: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("pgp: mime: %w", err)
	}
	return nil
}

// BuildSigned turns msg into a multipart/signed message (RFC 3156 section
// 5) with a detached signature by signer. The signed part carries the
// protected headers (hp="clear", RFC 9788); the outer header is unchanged.
func BuildSigned(msg []byte, signer *Key) ([]byte, error) {
	if signer == nil || !signer.IsPrivate() {
		return nil, fmt.Errorf("%w: signer has no secret key", ErrUnusableKey)
	}
	_, body, h := splitMessage(msg)
	// The CRLF before a boundary belongs to the boundary (RFC 2046 section
	// 5.1.1), so it is not part of the signed content.
	signed := bytes.TrimSuffix(innerEntity(h, body, "clear"), []byte("\r\n"))
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, signer.entity, bytes.NewReader(signed), nil); err != nil {
		return nil, fmt.Errorf("pgp: sign: %w", err)
	}
	sig.WriteString("\r\n")
	outer := outerHeader(h)
	boundary := randomBoundary()
	mh := message.Header{Header: outer}
	mh.SetContentType("multipart/signed", map[string]string{
		"protocol": "application/pgp-signature", "micalg": "pgp-sha256", "boundary": boundary})
	var out bytes.Buffer
	if err := textproto.WriteHeader(&out, mh.Header); err != nil {
		return nil, fmt.Errorf("pgp: mime: %w", err)
	}
	// The signed part is written byte for byte: a MIME writer that
	// re-serialised its header could change what was signed.
	fmt.Fprintf(&out, "--%s\r\n", boundary)
	out.Write(signed)
	var sh message.Header
	sh.SetContentType("application/pgp-signature", map[string]string{"name": "signature.asc"})
	sh.SetContentDisposition("attachment", map[string]string{"filename": "signature.asc"})
	fmt.Fprintf(&out, "\r\n--%s\r\n", boundary)
	_ = textproto.WriteHeader(&out, sh.Header)
	out.Write(sig.Bytes())
	fmt.Fprintf(&out, "\r\n--%s--\r\n", boundary)
	return out.Bytes(), nil
}

func randomBoundary() string {
	var b [18]byte
	_, _ = io.ReadFull(randReader, b[:])
	return fmt.Sprintf("sm-%x", b)
}

// errNotPGPMIME marks input that looked like PGP/MIME but is not usable.
var errNotPGPMIME = errors.New("pgp: malformed PGP/MIME message")
