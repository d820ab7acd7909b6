// Package imapd is the bridge's IMAP front end: it serves a bridge.View (the
// decrypted local cache of one account) to mail clients on the loopback
// interface, on top of go-imap v2's imapserver.
//
// Standards implemented, as far as go-imap v2.0.0-beta.8's server carries
// them: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051), IDLE (RFC 2177),
// NAMESPACE (RFC 2342), UIDPLUS (RFC 4315), MOVE (RFC 6851), SPECIAL-USE
// (RFC 6154), ENABLE (RFC 5161), LITERAL+ (RFC 7888), UNSELECT (RFC 3691),
// CHILDREN (RFC 3348), LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819),
// STATUS=SIZE (RFC 8438), ESEARCH (RFC 4731), APPENDLIMIT (RFC 7889), BINARY
// (RFC 3516) and STARTTLS (RFC 9051 section 6.2.1). CONDSTORE/QRESYNC
// (RFC 7162) and ID (RFC 2971) are not offered because the library's server
// does not parse them: ID gets a tagged BAD, which Python's imaplib carries
// on after; Thunderbird sends ID only to servers that announce it, and mbsync
// (isync 1.4) never sends it.
//
// Parents that do not exist (only "a/b" was created) are listed with
// \Noselect (and \NonExistent for IMAP4rev2 clients) so clients show the
// tree. A selected mailbox that another session or device renames stays
// selected under its new name; one deleted elsewhere is emptied by EXPUNGEs
// and its commands answer NO [NONEXISTENT].
//
// Header-only FETCH items (ENVELOPE, BODYSTRUCTURE, FLAGS, INTERNALDATE,
// RFC822.SIZE, BODY[HEADER…], UID) are answered from the cached header-blob
// summary and never call View.Body, so a client's message list does not
// download or decrypt a single body. A selected mailbox keeps only UID,
// flags, internal date and size per message; FETCH and SEARCH read the
// summaries they need from the view in batches (View.Summaries), so memory
// does not grow with the mailbox beyond the bridge's bounded summary LRU.
// Plaintext login is allowed because the
// server listens on loopback only: the password never leaves the machine.
package imapd
