package imapd

import (
	"context"
	"errors"

	"github.com/emersion/go-imap/v2"

	"smessenger/internal/store"
)

// Protocol errors the sessions return. Their text is generic on purpose:
// internal detail is logged, never sent (STYLE.md, Errors).
var (
	errNoSuchMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	errTryCreate     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
	errExists        = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	errProtected     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "This mailbox cannot be changed that way"}
	errOverQuota     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Quota exceeded"}
	errNoMessage     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such message"}
	errInvalid       = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid argument"}
	errUnavailable   = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporarily unavailable, try again"}
	errReadOnly      = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox is read-only"}
	errParse         = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeParse, Text: "Message has no valid header"}
	errNoSearchRes   = &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "SEARCHRES is not supported"}
	errMailboxGone   = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "Selected mailbox was deleted"}
)

// errSummaryCount is a View that answered Summaries with a result per UID
// missing or extra: a bug of the view, logged and answered as unavailable.
var errSummaryCount = errors.New("imapd: view returned a wrong number of summaries")

// toIMAP turns a view error into a protocol error, logging anything that is
// not a known sentinel. append selects TRYCREATE for a missing destination,
// which RFC 9051 section 6.3.12 asks of APPEND and COPY.
func (s *session) toIMAP(op string, err error, tryCreate bool) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.Is(err, store.ErrMailboxNotFound):
		if tryCreate {
			return errTryCreate
		}
		return errNoSuchMailbox
	case errors.Is(err, store.ErrMailboxExists):
		return errExists
	case errors.Is(err, store.ErrMailboxProtected):
		return errProtected
	case errors.Is(err, store.ErrQuotaExceeded):
		return errOverQuota
	case errors.Is(err, store.ErrMessageNotFound), errors.Is(err, store.ErrNotFound):
		return errNoMessage
	case errors.Is(err, store.ErrInvalid):
		return errInvalid
	case errors.Is(err, context.Canceled):
		return errUnavailable
	}
	s.srv.log.Error("imapd: view call failed", "op", op, "err", err)
	return errUnavailable
}

// Flag operations of bridge.View.StoreFlags (bridge re-exports the type only).
const (
	flagsSet    = store.FlagsSet
	flagsAdd    = store.FlagsAdd
	flagsRemove = store.FlagsRemove
)
