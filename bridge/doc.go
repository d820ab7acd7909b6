// Package bridge is the client side of sMessenger: the user's account on
// this machine. It holds the OpenPGP private key (passphrase-protected, in a
// vault), enrols the device with the server, keeps a local encrypted cache of
// the account's mailboxes in sync with the server's event log, decrypts
// sealed and externally encrypted mail, and offers the mailbox View that the
// IMAP and SMTP front ends consume.
//
// Standards: messages are RFC 5322 / MIME (RFC 2045); OpenPGP is RFC 4880 /
// RFC 9580 through package pgp; externally encrypted mail is PGP/MIME
// (RFC 3156) or inline, with protected headers (RFC 9788) restored; the
// signature result is added in an Authentication-Results header field
// (RFC 8601) with the method "x-smessenger-pgp". Mailbox semantics (UIDs,
// UIDVALIDITY, flags) follow IMAP4rev2 (RFC 9051); the key derivation for the
// vault is Argon2id (RFC 9106) and records are sealed with
// XChaCha20-Poly1305 (RFC 8439 and its extended-nonce variant). Autocrypt
// state is learned per Autocrypt Level 1 from every message added to INBOX.
//
// Memory: the in-memory index holds a few dozen bytes per message (UID,
// flags, dates, size, ids); message summaries are read from the encrypted
// cache on demand and kept in a bounded LRU (OpenConfig.SummaryMemory);
// decrypted bodies likewise (OpenConfig.BodyMemory), a body being kept only
// when it is read a second time, so that a client downloading or searching
// a whole mailbox does not churn it. Bodies are cached on disk in chunks of
// 64 KiB, so a body costs about its own size to write or read, and the
// cache file's mapped pages are dropped from the process's RSS every 16 MiB
// of bodies read or written (bodystore.go, mapping.go). Background prefetch of
// bodies is bounded to the newest messages of each mailbox and a byte budget
// per run (OpenConfig.PrefetchMessages, PrefetchBytes). Front ends list a
// selected mailbox with View.MessageList (no summaries) and read summaries
// in batches with View.Summaries, so a selected mailbox of any size costs
// them a few dozen bytes per message too.
//
// Ordering: messages become visible (index, Watch updates) in ascending UID
// order per mailbox, both in a first sync, whose header batches are
// downloaded and decrypted in parallel but added in order, and from the
// event stream, which is applied in Seq order. An IMAP session can only
// append to its message list, so a lower UID shown after a higher one
// would stay hidden from it until the next SELECT.
package bridge
