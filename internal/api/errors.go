package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"smessenger/internal/store"
)

// Sentinel errors of the API itself (the store's sentinels are reused for
// everything the store reports). Test with errors.Is.
var (
	ErrTooLarge         = errors.New("api: request too large")
	ErrRateLimited      = errors.New("api: rate limit exceeded")
	ErrUnauthorized     = errors.New("api: caller not authorised")
	ErrForbidden        = errors.New("api: operation not allowed for this account")
	ErrUnknownRecipient = errors.New("api: unknown recipient")
	ErrInternal         = errors.New("api: internal server error")
	ErrUnavailable      = errors.New("api: server unavailable")
	ErrProtocol         = errors.New("api: malformed server response")
	// ErrCopyFailed: a deliver call's deliveries were stored, its copy was not.
	ErrCopyFailed = errors.New("api: copy not stored")
)

// Error is an error reported by the server: an HTTP status, a stable code and
// a short text that never contains internal detail.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("api: server refused (%s): %s", e.Code, e.Message)
}

// Is maps the wire code back to the sentinel errors, so callers can use
// errors.Is(err, store.ErrMailboxNotFound) on the client side.
func (e *Error) Is(target error) bool {
	for _, c := range codes {
		if c.code == e.Code {
			for _, s := range c.errs {
				if s == target {
					return true
				}
			}
		}
	}
	return false
}

// code ties a wire code to its HTTP status and the sentinels it stands for.
// The order matters on the server side: the first entry whose first sentinel
// matches wins, so specific errors come before generic ones.
type code struct {
	code   string
	status int
	errs   []error
}

var codes = []code{
	{"account_not_found", http.StatusNotFound, []error{store.ErrAccountNotFound}},
	{"address_taken", http.StatusConflict, []error{store.ErrAddressTaken}},
	{"mailbox_not_found", http.StatusNotFound, []error{store.ErrMailboxNotFound}},
	{"mailbox_exists", http.StatusConflict, []error{store.ErrMailboxExists}},
	{"mailbox_protected", http.StatusForbidden, []error{store.ErrMailboxProtected}},
	{"message_not_found", http.StatusNotFound, []error{store.ErrMessageNotFound}},
	{"device_not_found", http.StatusNotFound, []error{store.ErrDeviceNotFound}},
	{"device_exists", http.StatusConflict, []error{store.ErrDeviceExists}},
	{"token_invalid", http.StatusForbidden, []error{store.ErrTokenInvalid}},
	{"quota_exceeded", http.StatusInsufficientStorage, []error{store.ErrQuotaExceeded}},
	{"unknown_recipient", http.StatusNotFound, []error{ErrUnknownRecipient, store.ErrNotFound}},
	{"not_found", http.StatusNotFound, []error{store.ErrNotFound}},
	{"invalid", http.StatusBadRequest, []error{store.ErrInvalid}},
	{"too_large", http.StatusRequestEntityTooLarge, []error{ErrTooLarge}},
	{"rate_limited", http.StatusTooManyRequests, []error{ErrRateLimited}},
	{"unauthorized", http.StatusUnauthorized, []error{ErrUnauthorized}},
	{"forbidden", http.StatusForbidden, []error{ErrForbidden}},
	{"unavailable", http.StatusServiceUnavailable, []error{ErrUnavailable}},
	{"internal", http.StatusInternalServerError, []error{ErrInternal}},
}

// publicText is the fixed wire text per code, so that no wrapped internal
// message is ever sent.
var publicText = map[string]string{
	"account_not_found": "account not found",
	"address_taken":     "address already in use",
	"mailbox_not_found": "mailbox not found",
	"mailbox_exists":    "mailbox already exists",
	"mailbox_protected": "INBOX cannot be deleted or renamed",
	"message_not_found": "message not found",
	"device_not_found":  "device not found",
	"device_exists":     "device already enrolled",
	"token_invalid":     "enrolment token invalid, used or expired",
	"quota_exceeded":    "quota exceeded",
	"not_found":         "not found",
	"invalid":           "invalid request",
	"too_large":         "request too large",
	"rate_limited":      "rate limit exceeded, retry later",
	"unauthorized":      "not authorised",
	"forbidden":         "not allowed",
	"unavailable":       "server unavailable",
	"internal":          "internal server error",
}

// reqError is a validation failure whose text was written by this package
// about the client's own input, so it is safe to send.
type reqError struct {
	code string
	msg  string
}

func (e *reqError) Error() string { return "api: " + e.msg }

// Is lets a reqError match the sentinels of its code on the server side.
func (e *reqError) Is(target error) bool {
	return (&Error{Code: e.code}).Is(target)
}

func invalidf(format string, args ...any) error {
	return &reqError{code: "invalid", msg: fmt.Sprintf(format, args...)}
}

// toWire turns any handler error into what the client may see, and reports
// whether it was an unexpected (internal) failure.
func toWire(err error) (e *Error, internal bool) {
	var re *reqError
	if errors.As(err, &re) {
		return &Error{Status: statusOf(re.code), Code: re.code, Message: re.msg}, false
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: publicText["too_large"]}, false
	}
	for _, c := range codes {
		if errors.Is(err, c.errs[0]) {
			return &Error{Status: c.status, Code: c.code, Message: publicText[c.code]}, c.code == "internal"
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: publicText["internal"]}, true
}

func statusOf(code string) int {
	for _, c := range codes {
		if c.code == code {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// decodeError reads an error body sent by the server. A body that is not
// one of ours still yields an *Error with the HTTP status.
func decodeError(status int, body []byte) error {
	e := &Error{Status: status}
	if err := json.Unmarshal(body, e); err != nil || e.Code == "" {
		e.Code = codeForStatus(status)
		e.Message = http.StatusText(status)
	}
	return e
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusBadRequest:
		return "invalid"
	}
	return "internal"
}
