package bridge

import (
	"context"
	"time"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// This file fixes the contract between the bridge and its front ends (imapd,
// smtpd). imapd declares an interface with exactly these methods (on
// *bridge.Account); the types below are what crosses it.

// MailboxInfo is what a front end shows of a mailbox. UIDValidity and UIDs
// are the server's, so every device of the account shows the same ones.
type MailboxInfo struct {
	Name        string
	SpecialUse  string // `\Sent`, `\Drafts`, … or "" (INBOX has "")
	Subscribed  bool
	UIDValidity uint32
	UIDNext     uint32
	Messages    uint32
	Unseen      uint32
	Size        int64
}

// MessageInfo is one message of a mailbox as the local cache knows it: the
// decrypted header-blob summary is always present; the body may not be cached.
type MessageInfo struct {
	UID          uint32
	Flags        []string
	InternalDate time.Time
	Size         int64
	Summary      *pgp.Summary
}

// UpdateKind says what changed in a mailbox.
type UpdateKind int

// Update kinds, as front ends (IMAP IDLE, unsolicited responses) need them.
const (
	UpdateAdded          UpdateKind = iota + 1 // a message with UID appeared
	UpdateFlags                                // UID's flags are now Flags
	UpdateExpunged                             // UID is gone
	UpdateMailboxDeleted                       // the mailbox itself is gone
)

// Update is a change to a mailbox that a front end must tell its client about.
type Update struct {
	Kind    UpdateKind
	Mailbox string
	UID     uint32
	Flags   []string
}

// UIDPair is re-exported so front ends need not import the store.
type UIDPair = store.UIDPair

// FlagOp is re-exported so front ends need not import the store.
type FlagOp = store.FlagOp

// View is the mailbox view the front ends consume; *Account satisfies it.
// Errors are the store's sentinels (store.ErrMailboxNotFound,
// store.ErrMailboxExists, store.ErrMailboxProtected, store.ErrQuotaExceeded,
// …), wrapped; front ends test them with errors.Is.
type View interface {
	// Mailboxes lists all mailboxes, sorted by name, INBOX first.
	Mailboxes(ctx context.Context) ([]MailboxInfo, error)
	Mailbox(ctx context.Context, name string) (MailboxInfo, error)
	CreateMailbox(ctx context.Context, name string) error
	DeleteMailbox(ctx context.Context, name string) error
	RenameMailbox(ctx context.Context, oldName, newName string) error
	SetSubscribed(ctx context.Context, name string, subscribed bool) error

	// Messages lists a mailbox's messages in UID order, from the local cache,
	// summaries included.
	Messages(ctx context.Context, mailbox string) ([]MessageInfo, error)
	// MessageList lists a mailbox's messages in UID order like Messages but
	// without summaries (Summary is nil): the compact listing a front end
	// keeps for a selected mailbox, a few dozen bytes per message.
	MessageList(ctx context.Context, mailbox string) ([]MessageInfo, error)
	// Summaries returns the summaries of uids of a mailbox, out[i] for
	// uids[i]. out[i] is nil for a UID the mailbox does not have (expunged
	// meanwhile) or whose summary cannot be read; front ends then work from
	// the body. Callers ask in batches (a few hundred UIDs), so only those
	// summaries are held at once.
	Summaries(ctx context.Context, mailbox string, uids []uint32) ([]*pgp.Summary, error)
	// Body returns the decrypted full RFC 5322 message (from the cache, or
	// downloaded and cached). A message that cannot be decrypted yields a
	// readable placeholder message, not an error.
	Body(ctx context.Context, mailbox string, uid uint32) ([]byte, error)
	// Append seals raw to the account's own key and stores it on the server.
	Append(ctx context.Context, mailbox string, raw []byte, flags []string, date time.Time) (uidValidity, uid uint32, err error)
	StoreFlags(ctx context.Context, mailbox string, uids []uint32, op FlagOp, flags []string) error
	Copy(ctx context.Context, src string, uids []uint32, dst string) (uidValidity uint32, pairs []UIDPair, err error)
	Move(ctx context.Context, src string, uids []uint32, dst string) (uidValidity uint32, pairs []UIDPair, err error)
	// Expunge removes uids (nil: all \Deleted) and returns the removed UIDs.
	Expunge(ctx context.Context, mailbox string, uids []uint32) ([]uint32, error)
	// Watch delivers updates of one mailbox (changes made by any device,
	// this one included) until cancel is called. Updates are coalesced, never
	// dropped; the channel is closed after cancel.
	Watch(mailbox string) (updates <-chan Update, cancel func())
}
