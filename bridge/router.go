package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"smessenger/pgp"
)

// Routing policies for external recipients without a known key.
const (
	// PolicyRefuse (the default) fails the submission with a 5xx that names
	// the recipient. A user of an encrypted mail service must never send
	// plaintext by accident: mail that cannot be encrypted is refused
	// until the user imports the recipient's key or switches the account
	// to PolicyPlain on purpose.
	PolicyRefuse = "refuse"
	// PolicyPlain sends the message as written, over TLS only (and signed
	// with PGP/MIME multipart/signed when RouterConfig.SignPlain is set).
	PolicyPlain = "plain"
)

// Sentinel errors of routing; test with errors.Is. Refusals come as a
// *SendError wrapping one of them.
var (
	// ErrNoRecipientKey: an external recipient has no known key and the
	// policy is PolicyRefuse.
	ErrNoRecipientKey = errors.New("bridge: no OpenPGP key for recipient")
	// ErrKeyChanged: an internal recipient's key differs from the pinned one.
	ErrKeyChanged = errors.New("bridge: recipient's key changed")
	// ErrUnknownRecipient: an address in one of the server's domains that
	// belongs to no user, or one the server refused.
	ErrUnknownRecipient = errors.New("bridge: no such recipient")
	// ErrNotOwnAddress: a sender address that is not the account's.
	ErrNotOwnAddress = errors.New("bridge: not an address of this account")
	// ErrBadMessage: the submitted message is malformed.
	ErrBadMessage = errors.New("bridge: malformed message")
	// ErrBadAddress: a recipient that is not an e-mail address.
	ErrBadAddress = errors.New("bridge: invalid address")
	// ErrRecipientKeyUnusable: the key found for a recipient cannot be used.
	ErrRecipientKeyUnusable = errors.New("bridge: recipient key unusable")
	// ErrSendFailed: the server did not take the message; try again later.
	ErrSendFailed = errors.New("bridge: send failed")
)

// SendError is a refusal of a submission that the user must see: Reason
// is written for the user and holds no internal detail, so a front end may
// show Address and Reason (PublicMessage) to the mail client.
type SendError struct {
	Address   string // the recipient or sender concerned, or ""
	Reason    string
	Temporary bool // worth retrying as is
	Err       error
}

func (e *SendError) Error() string {
	if e.Address == "" {
		return "bridge: " + e.Reason
	}
	return "bridge: " + e.Address + ": " + e.Reason
}

// Unwrap returns the sentinel.
func (e *SendError) Unwrap() error { return e.Err }

// PublicMessage is the text for the mail client.
func (e *SendError) PublicMessage() string {
	if e.Address == "" {
		return e.Reason
	}
	return "<" + e.Address + ">: " + e.Reason
}

// RouterConfig configures a Router.
type RouterConfig struct {
	// Account provides the server client, the key, the addresses and the
	// Sent mailbox. Without it, Server, Key and Addresses must be set and
	// the Sent copy goes straight to the server (no local cache, no
	// de-duplication of the client's own APPEND).
	Account   *Account
	Server    Server
	Key       *pgp.Key
	Addresses func() []string
	// Policy for external recipients without a key: PolicyRefuse (default)
	// or PolicyPlain.
	Policy string
	// SignPlain signs plaintext external mail (PGP/MIME multipart/signed).
	SignPlain bool
	// Contacts is the local keyring, the pin store for internal
	// recipients' keys and (unless Autocrypt is set) the Autocrypt state.
	// Nil disables all three: no imported keys, no pinning.
	Contacts *Contacts
	// WKD looks keys up in the Web Key Directory; nil: no WKD lookups.
	// Build it with NewWKDClient so that the bridge's proxy applies.
	WKD *pgp.WKDClient
	// Autocrypt is the learned Autocrypt state; nil: Contacts.
	Autocrypt AutocryptSource
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// KeyCacheTTL is how long a directory answer is reused (default one
	// minute; negative: never). A changed key is noticed after at most
	// this long.
	KeyCacheTTL time.Duration
	// SentWindow is how long a sent Message-ID is remembered (default
	// DefaultSentWindow).
	SentWindow time.Duration
	// Log receives warnings; nil discards.
	Log *slog.Logger
}

// Router routes the account's outgoing mail, per recipient:
//
//   - internal (a user of the server): the message is sealed to the
//     recipient's key and delivered through the API, never as SMTP. The
//     recipient's key is pinned on first use; a changed key is refused
//     (ErrKeyChanged) until the user confirms it with Contacts.Trust
//     (`smessenger bridge contacts trust ADDRESS`). Refusing rather than
//     warning is the choice because a warning in a log reaches nobody while
//     Thunderbird shows a refused recipient to the user at once.
//   - external with a key (keyring, then Autocrypt, then WKD): PGP/MIME,
//     encrypted to the recipient and to the sender, signed, with protected
//     headers and the sender's Autocrypt header, queued on the server.
//   - external without a key: per the policy.
//
// Every submission is also sealed to the account's key and filed in Sent.
type Router struct {
	cfg   RouterConfig
	srv   Server
	key   *pgp.Key
	addrs func() []string
	log   *slog.Logger
	now   func() time.Time

	dedup *sentDedup
	dir   dirCache
	wkd   wkdCache

	sentMu   sync.Mutex
	sentName string
}

// NewRouter builds a router. With an Account it installs the Account's
// append filter, so a client's APPEND of a message the router already filed
// in Sent is not stored twice, and (with Contacts) its Autocrypt learner,
// so every message added to INBOX updates the Autocrypt state.
func NewRouter(cfg RouterConfig) (*Router, error) {
	r := &Router{cfg: cfg, srv: cfg.Server, key: cfg.Key, addrs: cfg.Addresses, log: cfg.Log, now: cfg.Now}
	if a := cfg.Account; a != nil {
		r.srv, r.key, r.addrs = a.Server(), a.Key(), a.Addresses
	}
	switch {
	case r.srv == nil || r.key == nil || r.addrs == nil:
		return nil, errors.New("bridge: router needs an account (or server, key and addresses)")
	case cfg.Policy == "":
		r.cfg.Policy = PolicyRefuse
	case cfg.Policy != PolicyRefuse && cfg.Policy != PolicyPlain:
		return nil, fmt.Errorf("bridge: unknown policy %q (want %q or %q)", cfg.Policy, PolicyRefuse, PolicyPlain)
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.cfg.Autocrypt == nil && cfg.Contacts != nil {
		r.cfg.Autocrypt = cfg.Contacts
	}
	ttl := cfg.KeyCacheTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	r.dir = dirCache{ttl: ttl, now: r.now}
	r.wkd = wkdCache{ttl: 10 * time.Minute, now: r.now}
	r.dedup = newSentDedup(cfg.SentWindow, r.now)
	if cfg.Account != nil {
		cfg.Account.SetAppendFilter(r.appendFilter)
		if cfg.Contacts != nil {
			cfg.Account.SetAutocryptLearner(r.LearnAutocrypt)
		}
	}
	return r, nil
}

// Policy returns the policy in force for key-less external recipients.
func (r *Router) Policy() string { return r.cfg.Policy }

// Addresses returns the account's addresses, primary first.
func (r *Router) Addresses() []string { return r.addrs() }

// IsOwnAddress reports whether addr is one of the account's addresses.
func (r *Router) IsOwnAddress(addr string) bool {
	addr = normAddr(addr)
	for _, a := range r.addrs() {
		if normAddr(a) == addr {
			return true
		}
	}
	return false
}

// LearnAutocrypt feeds the Autocrypt header(s) of a received message (its
// header section, e.g. Summary.Header) from address from, dated date, into
// the Autocrypt state. The Account calls it for every message it adds to
// INBOX once NewRouter registered it (Account.SetAutocryptLearner).
func (r *Router) LearnAutocrypt(from string, header []byte, date time.Time) error {
	if r.cfg.Contacts == nil {
		return nil
	}
	return r.cfg.Contacts.LearnAutocrypt(from, header, date)
}

// CheckRecipient tells at RCPT time whether rcpt can be sent to: nil, or a
// *SendError naming the recipient and the reason.
func (r *Router) CheckRecipient(ctx context.Context, rcpt string) error {
	_, err := r.resolve(ctx, rcpt)
	return err
}

// appendFilter is the Account's append hook: a message appended to Sent
// whose Message-ID the router filed there within the window is the
// client's own copy of it (Thunderbird appends one after every send), so
// the existing UID is reported instead of storing it again.
func (r *Router) appendFilter(mailbox string, raw []byte) (bool, uint32) {
	if !strings.EqualFold(mailbox, r.sentMailbox(context.Background())) {
		return false, 0
	}
	id := messageIDOf(raw)
	if id == "" {
		return false, 0
	}
	uid, ok := r.dedup.sentUID(id)
	return ok, uid
}

// sentMailbox returns the name of the account's \Sent mailbox.
func (r *Router) sentMailbox(ctx context.Context) string {
	r.sentMu.Lock()
	name := r.sentName
	r.sentMu.Unlock()
	if name != "" {
		return name
	}
	if a := r.cfg.Account; a != nil {
		if boxes, err := a.Mailboxes(ctx); err == nil {
			for _, b := range boxes {
				if b.SpecialUse == `\Sent` {
					// Remembered only once known: before the first sync
					// the list may still be empty.
					r.sentMu.Lock()
					r.sentName = b.Name
					r.sentMu.Unlock()
					return b.Name
				}
			}
		}
	}
	return "Sent"
}
