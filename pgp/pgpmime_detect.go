package pgp

import (
	"bytes"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// IsEncrypted reports whether msg is a PGP/MIME encrypted message (a
// top-level multipart/encrypted with protocol application/pgp-encrypted,
// RFC 3156 section 4) or an inline-PGP message whose whole body is one
// armored PGP MESSAGE.
func IsEncrypted(msg []byte) bool {
	_, body, h := splitMessage(msg)
	return isEncrypted(h, body)
}

// isEncrypted is IsEncrypted over a message already split.
func isEncrypted(h textproto.Header, body []byte) bool {
	mh := message.Header{Header: h}
	t, params, err := mh.ContentType()
	if err != nil {
		t = "text/plain"
	}
	if strings.EqualFold(t, "multipart/encrypted") {
		return strings.EqualFold(params["protocol"], "application/pgp-encrypted")
	}
	if h.Len() > 0 && !strings.HasPrefix(strings.ToLower(t), "text/plain") {
		return false
	}
	return isInlineArmor(body)
}

// isInlineArmor: the body, trimmed, is exactly one armored message.
func isInlineArmor(body []byte) bool {
	b := bytes.TrimSpace(body)
	return bytes.HasPrefix(b, []byte("-----BEGIN PGP MESSAGE-----")) &&
		bytes.HasSuffix(b, []byte("-----END PGP MESSAGE-----"))
}
