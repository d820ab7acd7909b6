// Package pgp is sMessenger's OpenPGP layer, built on
// github.com/ProtonMail/go-crypto/openpgp: user keys, sealing and opening of
// binary OpenPGP messages, the sealed header/body blobs the server stores,
// PGP/MIME with protected headers, Autocrypt and the Web Key Directory.
//
// Standards implemented:
//   - RFC 4880 and RFC 9580 (OpenPGP): v4 keys with legacy EdDSA/ECDH over
//     Curve25519 (RFC 6637, draft-ietf-openpgp-rfc4880bis) so that GnuPG 2.2
//     and Sequoia 0.27 can use them; SEIPDv1 (MDC) for interoperability and
//     SEIPDv2 (AEAD, RFC 9580 section 5.13.2) between keys that advertise it.
//     The blobs the server stores (SealMessage) are SEIPDv2 whenever the
//     owner's keys advertise it, as ours do; mail to the outside
//     (BuildEncrypted) is SEIPDv1, the newest GnuPG 2.2 reads.
//   - RFC 9580 section 6.2 (ASCII armor), with our own bounded reader.
//   - RFC 3156 (MIME security with OpenPGP): multipart/encrypted and
//     multipart/signed, verified in canonical CRLF form (section 5).
//   - RFC 9788 (header protection for cryptographically protected e-mail),
//     with the Autocrypt "protected headers" legacy display part omitted.
//   - RFC 5322 / RFC 2045-2049 (message format and MIME) for the summaries,
//     producing the IMAP ENVELOPE and BODYSTRUCTURE data of RFC 9051 section
//     7.5.2.
//   - Autocrypt Level 1 (https://autocrypt.org/level1.html): the Autocrypt
//     header and the peer state update rules.
//   - draft-koch-openpgp-webkey-service (WKD): hashes, URLs, a lookup client
//     and a publishing http.Handler.
//
// Messages that are not integrity protected, or whose integrity check fails,
// never yield plaintext (the EFAIL lesson); see Open and OpenStream.
package pgp
