package pgp

import "errors"

// Sentinel errors. Callers test them with errors.Is; the wrapped text says
// why, but it is internal detail and must not be sent on the wire.
var (
	// ErrNoIntegrity: the message is not integrity protected (no MDC, no
	// AEAD) or not encrypted at all; no plaintext is returned.
	ErrNoIntegrity = errors.New("pgp: message is not integrity protected")
	// ErrIntegrity: the integrity check (MDC or AEAD tag) failed, or the
	// decrypted data is malformed; no plaintext is returned.
	ErrIntegrity = errors.New("pgp: message integrity check failed")
	// ErrNotForKey: the message is not encrypted to the given key.
	ErrNotForKey = errors.New("pgp: message is not encrypted to this key")
	// ErrTooLarge: the plaintext (after decompression) exceeds the cap.
	ErrTooLarge = errors.New("pgp: message too large")
	// ErrMalformed: the input is not a well-formed OpenPGP message or key.
	ErrMalformed = errors.New("pgp: malformed OpenPGP data")
	// ErrUnusableKey: the key cannot be used (expired, revoked, no
	// encryption-capable subkey, no private material, too many packets).
	ErrUnusableKey = errors.New("pgp: unusable key")
	// ErrWeakKey: the key uses an algorithm or size we refuse (RSA < 2048,
	// DSA, ElGamal).
	ErrWeakKey = errors.New("pgp: weak key")
	// ErrBadPassphrase: the passphrase does not unlock the secret key.
	ErrBadPassphrase = errors.New("pgp: wrong passphrase")
	// ErrNoKey: WKD has no key for the address.
	ErrNoKey = errors.New("pgp: no key found")
	// ErrLimit: a structural limit (MIME parts, nesting depth) was exceeded.
	ErrLimit = errors.New("pgp: limit exceeded")
	// ErrTooManyParts and ErrTooDeep say which structural limit it was;
	// both come wrapped with ErrLimit.
	ErrTooManyParts = errors.New("too many MIME parts")
	ErrTooDeep      = errors.New("MIME nesting too deep")
)
