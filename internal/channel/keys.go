package channel

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
)

// KeySize is the length of a Curve25519 public or private key.
const KeySize = 32

// KeyPair is a Curve25519 static key pair of a server or a device.
type KeyPair struct{ Private, Public []byte }

// GenerateKeyPair returns a fresh Curve25519 key pair from crypto/rand.
func GenerateKeyPair() (KeyPair, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("channel: generate key: %w", err)
	}
	return KeyPair{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

// KeyPairFromPrivate rebuilds a key pair from its stored private half, so
// callers only need to persist the private key.
func KeyPairFromPrivate(priv []byte) (KeyPair, error) {
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return KeyPair{}, fmt.Errorf("channel: bad private key: %w", err)
	}
	return KeyPair{Private: k.Bytes(), Public: k.PublicKey().Bytes()}, nil
}

// check reports whether kp is a usable, consistent key pair. A public half
// that does not match the private half would make every handshake fail in a
// way that is hard to diagnose, so it is caught up front.
func (kp KeyPair) check() error {
	want, err := KeyPairFromPrivate(kp.Private)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want.Public, kp.Public) != 1 {
		return fmt.Errorf("channel: public key does not match private key")
	}
	return nil
}

// Fingerprint returns the printable form of a public key: the key itself in
// unpadded base64url (RFC 4648 section 5), 43 characters. It is the whole key,
// not a hash, so the "server key" that `server init` prints can be pasted into
// `bridge login --server-key` and pinned directly; ParseFingerprint gives the
// key back.
func Fingerprint(pub []byte) string {
	return base64.RawURLEncoding.EncodeToString(pub)
}

// ParseFingerprint decodes what Fingerprint printed. Surrounding white space
// is ignored, and standard or padded base64 is accepted too because users copy
// keys through tools that re-encode them. The result is a 32-byte public key;
// the all-zero key is refused (it is a low-order point that would make the
// Diffie-Hellman result predictable).
func ParseFingerprint(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	if len(s) != base64.RawURLEncoding.EncodedLen(KeySize) {
		return nil, fmt.Errorf("channel: server key must be %d base64url characters, got %d",
			base64.RawURLEncoding.EncodedLen(KeySize), len(s))
	}
	key, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("channel: server key is not base64url: %w", err)
	}
	if err := checkPublic(key); err != nil {
		return nil, err
	}
	return key, nil
}

// checkPublic rejects keys of the wrong size and the all-zero key.
func checkPublic(key []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("channel: public key must be %d bytes, got %d", KeySize, len(key))
	}
	var zero [KeySize]byte
	if subtle.ConstantTimeCompare(key, zero[:]) == 1 {
		return fmt.Errorf("channel: public key is all zero")
	}
	return nil
}
