// Package demo assembles the running pieces of sMessenger that the
// command line starts: a bridge account with its IMAP and SMTP submission
// front ends (used by `smessenger bridge` and by the demo), and the whole
// system in one process for `smessenger demo` — a server node on bbolt, two
// users with their bridges, the MX, the outbound relay, and a local
// "outside world" made of an SMTP sink and a WKD server over HTTPS with a
// demo certificate authority.
//
// It only composes other packages; the protocols live there: SMTP (RFC
// 5321) with submission (RFC 6409) and STARTTLS (RFC 3207) in smtpd and
// the sink, IMAP4rev2 (RFC 9051) in imapd, OpenPGP (RFC 9580) and PGP/MIME
// (RFC 3156) in pgp, and the OpenPGP Web Key Directory
// (draft-koch-openpgp-webkey-service) served here from a folder of keys.
// Everything it starts listens on loopback only.
package demo
