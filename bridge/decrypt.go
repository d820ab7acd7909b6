package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"smessenger/pgp"
)

// authServID is the authserv-id of the Authentication-Results field the
// bridge adds (RFC 8601). Fields with this id that a message already carries
// are removed first, so a sender cannot forge a "pass".
const authServID = "smessenger.bridge"

// sigHeader is a plain form of the same result for people and filters.
const sigHeader = "X-Smessenger-Signature"

// sigResult maps pgp's verdict to the RFC 8601 result and our short word.
func sigResult(s pgp.SigStatus) (result, word string) {
	switch s {
	case pgp.SigValid:
		return "pass", "valid"
	case pgp.SigInvalid:
		return "fail", "invalid"
	case pgp.SigUnknownSigner:
		return "neutral", "unknown-signer"
	default:
		return "none", "unsigned"
	}
}

// decryptReason turns a decryption failure into a sentence for the user; the
// internal error text is logged, not shown.
func decryptReason(err error) string {
	switch {
	case errors.Is(err, pgp.ErrNotForKey):
		return "it is not encrypted to your key"
	case errors.Is(err, pgp.ErrIntegrity):
		return "its integrity check failed; it may have been altered in transit"
	case errors.Is(err, pgp.ErrNoIntegrity):
		return "it is not integrity protected, so it is not safe to show"
	case errors.Is(err, pgp.ErrTooLarge):
		return "its decrypted content is larger than the allowed maximum"
	case errors.Is(err, pgp.ErrMalformed), errors.Is(err, pgp.ErrLimit):
		return "it is not well-formed OpenPGP data"
	case errors.Is(err, pgp.ErrUnusableKey), errors.Is(err, pgp.ErrBadPassphrase):
		return "your key cannot decrypt it"
	}
	return "an unexpected error occurred while decrypting it"
}

// droppedInPlaceholder are header fields of the original that would
// misdescribe the placeholder's own body.
var droppedInPlaceholder = map[string]bool{
	"content-type": true, "content-transfer-encoding": true, "mime-version": true,
	"content-disposition": true, "content-id": true, "content-description": true,
}

// placeholder builds the readable message shown instead of one that cannot
// be decrypted: the original header fields (those that describe the message,
// not its body) and a text/plain body that says why.
func placeholder(header []byte, reason string) []byte {
	var b bytes.Buffer
	fields, _ := splitMessage(header)
	hasFrom, hasDate := false, false
	for _, f := range fields {
		name := fieldName(f)
		if name == "" || droppedInPlaceholder[name] || isOurResult(name, f) {
			continue
		}
		hasFrom = hasFrom || name == "from"
		hasDate = hasDate || name == "date"
		b.Write(withCRLF(f))
	}
	if !hasFrom {
		b.WriteString("From: sMessenger bridge <bridge@smessenger.invalid>\r\n")
	}
	if !hasDate {
		b.WriteString("Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n")
	}
	if headerValue(fields, "subject") == "" {
		b.WriteString("Subject: Message could not be decrypted\r\n")
	}
	fmt.Fprintf(&b, "Authentication-Results: %s; x-smessenger-pgp=permerror\r\n", authServID)
	b.WriteString(sigHeader + ": undecryptable\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "This message could not be decrypted: %s.\r\n", reason)
	return b.Bytes()
}

// isOurResult reports whether a field claims to come from this bridge.
func isOurResult(name string, f []byte) bool {
	switch name {
	case strings.ToLower(sigHeader):
		return true
	case "authentication-results":
		v := fieldValue(f)
		id, _, _ := strings.Cut(v, ";")
		return strings.EqualFold(strings.TrimSpace(id), authServID)
	}
	return false
}

// hasOurResult reports whether msg's header section (a whole message or
// only its header) carries a field that claims to come from this bridge.
func hasOurResult(msg []byte) bool {
	hdr := msg
	if i := bytes.Index(msg, []byte("\n\r\n")); i >= 0 {
		hdr = msg[:i+1]
	} else if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		hdr = msg[:i+1]
	}
	// Cheap pre-filter: nearly all mail mentions neither name.
	low := bytes.ToLower(hdr)
	if !bytes.Contains(low, []byte("x-smessenger-signature")) && !bytes.Contains(low, []byte(authServID)) {
		return false
	}
	fields, _ := splitMessage(hdr)
	for _, f := range fields {
		if isOurResult(fieldName(f), f) {
			return true
		}
	}
	return false
}

// stripOurResults removes the fields that claim to come from this bridge
// from a message shown as it was received (not decrypted by us, so it
// carries no result of ours), keeping every other byte as it was.
func stripOurResults(msg []byte) []byte {
	fields, body := splitMessage(msg)
	var b bytes.Buffer
	b.Grow(len(msg))
	n := 0
	for _, f := range fields {
		n += len(f)
		if !isOurResult(fieldName(f), f) {
			b.Write(f)
		}
	}
	// The blank line between header and body, as the message wrote it.
	b.Write(msg[n : len(msg)-len(body)])
	b.Write(body)
	return b.Bytes()
}

// withSignatureResult prepends our result fields to msg and removes any
// earlier copies of them.
func withSignatureResult(msg []byte, st pgp.SigStatus, signer string) []byte {
	fields, body := splitMessage(msg)
	result, word := sigResult(st)
	var b bytes.Buffer
	b.Grow(len(msg) + 200)
	fmt.Fprintf(&b, "Authentication-Results: %s; x-smessenger-pgp=%s", authServID, result)
	if signer != "" && (st == pgp.SigValid || st == pgp.SigInvalid) {
		fmt.Fprintf(&b, " (signer %s)", signer)
	}
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "%s: %s\r\n", sigHeader, word)
	for _, f := range fields {
		if !isOurResult(fieldName(f), f) {
			b.Write(withCRLF(f))
		}
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// decryptExternal shows a message that arrived OpenPGP-encrypted from
// outside: decrypted (pgp restores protected headers and decrypts only a
// whole top-level encrypted message), with the signature result added, or a
// placeholder that says why it could not be.
func (a *Account) decryptExternal(ctx context.Context, outer []byte, outerHeader []byte) []byte {
	verifiers := a.senderKeys(ctx, outerHeader)
	d, err := pgp.DecryptMessage(outer, a.key, verifiers)
	if err != nil {
		a.log.Info("bridge: message could not be decrypted", "err", err)
		return placeholder(outerHeader, decryptReason(err))
	}
	return withSignatureResult(d.Message, d.Signature, d.SignerFingerprint)
}

// senderKeys returns the keys that may have signed a message: the sender's
// current key from the server's directory (when it knows one) and our own.
func (a *Account) senderKeys(ctx context.Context, header []byte) []*pgp.Key {
	keys := []*pgp.Key{a.key.Public()}
	fields, _ := splitMessage(header)
	from, err := mail.ParseAddress(headerValue(fields, "from"))
	if err != nil {
		return keys
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kb, _, err := a.srv.LookupKey(lctx, from.Address)
	if err != nil {
		return keys
	}
	if k, err := pgp.ReadKey(kb); err == nil {
		keys = append(keys, k)
	}
	return keys
}
