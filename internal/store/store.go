// Package store is the server's storage: accounts, addresses, public keys,
// devices, mailboxes, sealed messages, the per-account event log and the
// outbound queue. It holds only opaque ciphertext for message content; it never
// parses a blob and never records a network address.
//
// Two implementations behave identically and pass the same conformance suite
// (package storetest): bolt (embedded, the default) and redis (standalone or
// Cluster).
//
// Durability contract: every method that changes state returns only after the
// change is durable (bbolt: fsync'd commit; Redis: acknowledged by a server
// that runs appendonly yes + appendfsync always). Each method is atomic: it
// either happens as a whole or not at all.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them with %w; callers test with errors.Is.
var (
	ErrNotFound         = errors.New("store: not found")
	ErrAccountNotFound  = errors.New("store: account not found")
	ErrAddressTaken     = errors.New("store: address already in use")
	ErrMailboxNotFound  = errors.New("store: mailbox not found")
	ErrMailboxExists    = errors.New("store: mailbox already exists")
	ErrMailboxProtected = errors.New("store: INBOX cannot be deleted or renamed")
	ErrMessageNotFound  = errors.New("store: message not found")
	ErrDeviceNotFound   = errors.New("store: device not found")
	ErrDeviceExists     = errors.New("store: device key already enrolled")
	ErrTokenInvalid     = errors.New("store: enrolment token invalid, used or expired")
	ErrQuotaExceeded    = errors.New("store: quota exceeded")
	ErrQueueEmpty       = errors.New("store: no queue entry is due")
	ErrLeaseLost        = errors.New("store: queue lease expired or held by another worker")
	ErrInvalid          = errors.New("store: invalid argument")
)

// AccountID identifies an account. It is opaque (random hex) and never derived
// from an address, so an alias change does not move data.
type AccountID string

// MessageID is a message's server id, unique within its account and never
// reused. A move keeps it; a copy gets a new one.
type MessageID uint64

// Account is a user of this server.
type Account struct {
	ID         AccountID
	Primary    string   // primary address, lower-case
	Addresses  []string // primary first, then aliases, lower-case
	Created    time.Time
	QuotaBytes int64 // 0 means unlimited
	UsedBytes  int64 // sum of Size over all stored messages
}

// Device is one enrolled bridge of an account: its Noise static public key.
type Device struct {
	ID       string // assigned by the store, unique per account
	Account  AccountID
	NoiseKey []byte // 32-byte Curve25519 static public key, unique store-wide
	Name     string
	Created  time.Time
	Revoked  bool
}

// Special-use attributes (RFC 6154) of the default mailboxes.
const (
	SpecialNone    = ""
	SpecialInbox   = `\Inbox` // not an RFC 6154 attribute; marks INBOX for symmetry
	SpecialSent    = `\Sent`
	SpecialDrafts  = `\Drafts`
	SpecialTrash   = `\Trash`
	SpecialJunk    = `\Junk`
	SpecialArchive = `\Archive`
)

// DefaultMailboxes are created with every account, in this order.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{"INBOX", SpecialInbox},
	{"Sent", SpecialSent},
	{"Drafts", SpecialDrafts},
	{"Trash", SpecialTrash},
	{"Junk", SpecialJunk},
	{"Archive", SpecialArchive},
}

// Mailbox is an IMAP mailbox of an account. Names are case-sensitive except
// "INBOX", which is normalised to upper case in every call. The hierarchy
// separator is "/".
type Mailbox struct {
	ID            uint64 // stable across renames; never reused in the account
	Name          string
	SpecialUse    string
	UIDValidity   uint32 // never reused for a name within the account
	UIDNext       uint32
	HighestModSeq uint64
	Subscribed    bool
	Messages      uint32 // number of messages
	Unseen        uint32 // messages without \Seen
	Size          int64  // sum of message sizes
}

// MessageMeta is what the server knows about a stored message besides its blobs.
type MessageMeta struct {
	ID           MessageID
	MailboxID    uint64
	UID          uint32
	Flags        []string // sorted, deduplicated; system flags keep their backslash
	InternalDate time.Time
	Size         int64 // size of the plaintext RFC 5322 message, as the sender declared it
	ModSeq       uint64
	HeaderLen    int // length of the header blob in bytes
	BodyLen      int // length of the body blob in bytes
}

// NewMessage is a message to append: two sealed blobs and their metadata.
type NewMessage struct {
	Flags        []string
	InternalDate time.Time // zero means now
	Size         int64
	HeaderBlob   []byte
	BodyBlob     []byte
}

// FlagOp says how StoreFlags combines the given flags with the current ones.
type FlagOp int

// Flag operations, as IMAP STORE FLAGS / +FLAGS / -FLAGS.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// UIDPair maps a source UID to the UID a copy or move got in the destination.
type UIDPair struct{ Src, Dst uint32 }

// EventKind says what changed.
type EventKind uint8

// Event kinds.
const (
	EventMessageAdded   EventKind = iota + 1 // Mailbox, MailboxID, UID, MessageID, Flags, ModSeq
	EventFlagsChanged                        // Mailbox, MailboxID, UID, MessageID, Flags, ModSeq
	EventExpunged                            // Mailbox, MailboxID, UID, MessageID, ModSeq
	EventMailboxCreated                      // Mailbox, MailboxID
	EventMailboxRenamed                      // Mailbox (new name), OldName, MailboxID
	EventMailboxDeleted                      // Mailbox, MailboxID
	EventSubscribed                          // Mailbox, MailboxID, Subscribed
)

// Event is one entry of an account's event log. Seq numbers start at 1 and
// grow by exactly 1 per event, in commit order, with no gaps.
type Event struct {
	Seq        uint64
	Kind       EventKind
	Time       time.Time
	Mailbox    string
	OldName    string
	MailboxID  uint64
	UID        uint32
	MessageID  MessageID
	Flags      []string
	ModSeq     uint64
	Subscribed bool
}

// QueueRecipient is one recipient of an outbound entry and its delivery state.
type QueueRecipient struct {
	Address   string
	Done      bool   // delivered (remote said 250) or permanently failed
	Failed    bool   // permanently failed (with Done)
	LastError string // last remote reply or connection error; never contains an IP of a user
}

// QueueEntry is one outbound message waiting for delivery to outside.
type QueueEntry struct {
	ID          string // assigned by Enqueue
	Account     AccountID
	From        string // envelope sender
	Recipients  []QueueRecipient
	Payload     []byte // the message as it will be sent (already PGP/MIME where applicable)
	Created     time.Time
	Attempts    int
	NextAttempt time.Time
	Expires     time.Time // give up (dead-letter) after this
	LastError   string
	Dead        bool   // moved to the dead-letter list
	LeaseOwner  string // set while leased
	LeaseUntil  time.Time
}

// Store is the server's storage. All methods are safe for concurrent use by
// many goroutines and (for redis) many processes. Addresses are compared
// case-insensitively and stored lower-case.
type Store interface {
	// CreateAccount creates an account with its primary address and the
	// DefaultMailboxes. ErrAddressTaken if the address belongs to anyone.
	CreateAccount(ctx context.Context, primary string, quotaBytes int64) (Account, error)
	GetAccount(ctx context.Context, id AccountID) (Account, error)
	ListAccounts(ctx context.Context) ([]Account, error)
	// DeleteAccount removes the account and everything it owns.
	DeleteAccount(ctx context.Context, id AccountID) error
	// LookupAddress resolves a primary address or alias. ErrNotFound if none.
	LookupAddress(ctx context.Context, address string) (AccountID, error)
	AddAlias(ctx context.Context, id AccountID, alias string) error
	RemoveAlias(ctx context.Context, id AccountID, alias string) error
	SetQuota(ctx context.Context, id AccountID, quotaBytes int64) error

	// SetPublicKey replaces the account's OpenPGP public key (binary packets).
	SetPublicKey(ctx context.Context, id AccountID, key []byte) error
	// PublicKey returns the account's key; ErrNotFound if none was set.
	PublicKey(ctx context.Context, id AccountID) ([]byte, error)

	// AddEnrolToken stores the hash of a one-time enrolment token.
	AddEnrolToken(ctx context.Context, id AccountID, tokenHash []byte, expires time.Time) error
	// ConsumeEnrolToken deletes the token and returns its account, or
	// ErrTokenInvalid if it is unknown, already used or expired at now.
	ConsumeEnrolToken(ctx context.Context, tokenHash []byte, now time.Time) (AccountID, error)

	// AddDevice enrols a device; ErrDeviceExists if its Noise key is known.
	AddDevice(ctx context.Context, id AccountID, noiseKey []byte, name string) (Device, error)
	// DeviceByKey finds a device by its Noise static key (revoked ones too).
	DeviceByKey(ctx context.Context, noiseKey []byte) (Device, error)
	ListDevices(ctx context.Context, id AccountID) ([]Device, error)
	RevokeDevice(ctx context.Context, id AccountID, deviceID string) error

	ListMailboxes(ctx context.Context, id AccountID) ([]Mailbox, error)
	GetMailbox(ctx context.Context, id AccountID, name string) (Mailbox, error)
	// CreateMailbox: ErrMailboxExists if the name is taken.
	CreateMailbox(ctx context.Context, id AccountID, name, specialUse string) (Mailbox, error)
	// RenameMailbox keeps the mailbox's ID, UIDs and UIDVALIDITY and renames
	// its children ("old/x" → "new/x"). Renaming INBOX is refused
	// (ErrMailboxProtected); ErrMailboxExists if newName is taken.
	RenameMailbox(ctx context.Context, id AccountID, oldName, newName string) error
	// DeleteMailbox removes the mailbox and its messages (not its children).
	// Deleting INBOX: ErrMailboxProtected.
	DeleteMailbox(ctx context.Context, id AccountID, name string) error
	SetSubscribed(ctx context.Context, id AccountID, name string, subscribed bool) error

	// Append adds a message with the next UID, bumps UIDNEXT and modseq, and
	// logs EventMessageAdded, all in one atomic commit. ErrQuotaExceeded if
	// it would pass the account's quota.
	Append(ctx context.Context, id AccountID, mailbox string, msg NewMessage) (MessageMeta, error)
	// ListMessages returns the metadata of messages with UID >= sinceUID in
	// UID order.
	ListMessages(ctx context.Context, id AccountID, mailbox string, sinceUID uint32) ([]MessageMeta, error)
	GetMessage(ctx context.Context, id AccountID, mailbox string, uid uint32) (MessageMeta, error)
	// HeaderBlobs returns the header blobs of the given messages, in order.
	// ErrMessageNotFound if any is missing.
	HeaderBlobs(ctx context.Context, id AccountID, msgs []MessageID) ([][]byte, error)
	BodyBlob(ctx context.Context, id AccountID, msg MessageID) ([]byte, error)
	// StoreFlags changes flags of the given UIDs (missing UIDs are skipped)
	// and returns the new metadata of the messages whose flags changed. Each
	// change bumps modseq and logs EventFlagsChanged.
	StoreFlags(ctx context.Context, id AccountID, mailbox string, uids []uint32, op FlagOp, flags []string) ([]MessageMeta, error)
	// Copy copies messages (new message ids, same blobs) to dst, in UID
	// order; missing UIDs are skipped.
	Copy(ctx context.Context, id AccountID, src string, uids []uint32, dst string) ([]UIDPair, error)
	// Move moves messages to dst (same message ids, new UIDs), logging
	// EventMessageAdded in dst and EventExpunged in src.
	Move(ctx context.Context, id AccountID, src string, uids []uint32, dst string) ([]UIDPair, error)
	// Expunge removes the given UIDs, or, when uids is nil, every message
	// flagged \Deleted. It returns the removed UIDs in ascending order.
	Expunge(ctx context.Context, id AccountID, mailbox string, uids []uint32) ([]uint32, error)

	// EventsSince returns up to limit events with Seq > after, in order.
	EventsSince(ctx context.Context, id AccountID, after uint64, limit int) ([]Event, error)
	// LastEventSeq is the Seq of the newest event (0 if none).
	LastEventSeq(ctx context.Context, id AccountID) (uint64, error)
	// WaitEvents blocks until the account has an event with Seq > after, and
	// returns the newest Seq; it returns ctx.Err() when ctx ends first. It
	// sees events written by other processes sharing the same store (redis).
	// Implementations share one subscription per process, so many waiters
	// are cheap.
	WaitEvents(ctx context.Context, id AccountID, after uint64) (uint64, error)

	// Enqueue adds an outbound entry, due at e.NextAttempt (zero: now), and
	// returns its id.
	Enqueue(ctx context.Context, e QueueEntry) (string, error)
	// Lease hands the earliest due entry (NextAttempt <= now, not leased or
	// lease expired) to owner until now+ttl. Two workers never hold the same
	// entry at once. ErrQueueEmpty if nothing is due.
	Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (QueueEntry, error)
	// UpdateLeased saves the recipients' state of a leased entry (so a crash
	// re-sends only to recipients not yet done). ErrLeaseLost if the lease
	// is not owner's any more.
	UpdateLeased(ctx context.Context, e QueueEntry, owner string) error
	// Complete removes a leased entry (all recipients done).
	Complete(ctx context.Context, entryID, owner string) error
	// Reschedule releases the lease, increments Attempts and sets the next
	// attempt time and last error.
	Reschedule(ctx context.Context, entryID, owner string, next time.Time, lastErr string) error
	// DeadLetter moves a leased entry to the dead-letter list with a reason.
	DeadLetter(ctx context.Context, entryID, owner string, reason string) error
	// ListQueue returns live entries (dead=false) or dead letters (dead=true)
	// without payloads, in id order.
	ListQueue(ctx context.Context, dead bool) ([]QueueEntry, error)
	// GetQueueEntry returns one entry with its payload (live or dead).
	GetQueueEntry(ctx context.Context, entryID string) (QueueEntry, error)
	// RetryNow makes a live or dead entry due now (a dead one becomes live).
	RetryNow(ctx context.Context, entryID string) error
	// DropEntry deletes a live or dead entry.
	DropEntry(ctx context.Context, entryID string) error

	Close() error
}

// NormalizeAddress lower-cases an address for lookups. It does not validate.
func NormalizeAddress(a string) string { return toLowerASCII(a) }

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// NormalizeMailbox maps any case of "inbox" (and "inbox/..." prefixes) to
// "INBOX", as RFC 3501 section 5.1 requires.
func NormalizeMailbox(name string) string {
	if len(name) >= 5 && toLowerASCII(name[:5]) == "inbox" && (len(name) == 5 || name[5] == '/') {
		return "INBOX" + name[5:]
	}
	return name
}
