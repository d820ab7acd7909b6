package bridge

import (
	"context"
	"io"

	"smessenger/internal/api"
	"smessenger/internal/store"
)

// Server is what the bridge needs from the sealed network server; the API
// client (internal/api.Client, over TLS + Noise) satisfies it. Every call acts
// on the caller's own account. Errors are the store's sentinels wrapped with
// %w where the server reported one (store.ErrMailboxNotFound, …), so callers
// test them with errors.Is.
type Server interface {
	WhoAmI(ctx context.Context) (WhoAmI, error)
	// LookupKey returns the current public key (binary OpenPGP) of an
	// address and whether the address is one of this server's users.
	// store.ErrNotFound when the server knows no key for it.
	LookupKey(ctx context.Context, address string) (key []byte, internal bool, err error)
	SetPublicKey(ctx context.Context, key []byte) error

	ListMailboxes(ctx context.Context) ([]store.Mailbox, error)
	CreateMailbox(ctx context.Context, name string) (store.Mailbox, error)
	RenameMailbox(ctx context.Context, oldName, newName string) error
	DeleteMailbox(ctx context.Context, name string) error
	SetSubscribed(ctx context.Context, name string, subscribed bool) error

	ListMessages(ctx context.Context, mailbox string, sinceUID uint32) ([]store.MessageMeta, error)
	// HeaderBlobs fetches up to 500 header blobs per call, in order.
	HeaderBlobs(ctx context.Context, ids []store.MessageID) ([][]byte, error)
	// BodyBlob streams one body blob.
	BodyBlob(ctx context.Context, id store.MessageID) (io.ReadCloser, error)
	Append(ctx context.Context, mailbox string, msg store.NewMessage) (store.MessageMeta, error)
	StoreFlags(ctx context.Context, mailbox string, uids []uint32, op store.FlagOp, flags []string) ([]store.MessageMeta, error)
	Copy(ctx context.Context, src string, uids []uint32, dst string) ([]store.UIDPair, error)
	Move(ctx context.Context, src string, uids []uint32, dst string) ([]store.UIDPair, error)
	Expunge(ctx context.Context, mailbox string, uids []uint32) ([]uint32, error)

	// Deliver appends sealed messages to internal recipients' INBOXes. Each
	// recipient's append is atomic and durable before the call returns OK;
	// a failure names the recipient.
	Deliver(ctx context.Context, deliveries []Delivery) error
	// Submit queues a message (already PGP/MIME or plain, as routed) for
	// delivery to outside recipients and returns the queue id.
	Submit(ctx context.Context, from string, recipients []string, payload []byte) (string, error)

	EventsSince(ctx context.Context, after uint64, limit int) ([]store.Event, error)
	// StreamEvents calls fn for every event with Seq > after, first the
	// backlog and then live ones, until ctx ends, fn fails or the connection
	// drops (then it returns the error; the caller reconnects and resumes).
	StreamEvents(ctx context.Context, after uint64, fn func(store.Event) error) error
}

// CopyDeliverer is an optional capability of a Server: Deliver that also
// appends the sender's own copy (its Sent copy) to mailbox in the same
// call, so a submission costs one round trip and one round of commits. err
// is that of the deliveries, as Deliver's; when they fail the server
// removes the copy again. With err nil, copyErr tells whether the copy was
// stored, and meta describes it.
type CopyDeliverer interface {
	DeliverWithCopy(ctx context.Context, deliveries []Delivery, mailbox string, copy store.NewMessage) (meta store.MessageMeta, copyErr, err error)
}

// WhoAmI is the server's view of the caller. It is the API's type so that
// the API client satisfies Server without importing the bridge.
type WhoAmI = api.WhoAmI

// Delivery is one sealed message for one internal recipient.
type Delivery = api.Delivery

var _ Server = (*api.Client)(nil)
