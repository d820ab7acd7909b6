package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"smessenger/internal/store"
)

// Caller is the authenticated peer of a request, as the channel established
// it. Handlers use only Caller.Account to pick the data they touch.
type Caller struct {
	Account   store.AccountID
	DeviceID  string
	DeviceKey []byte
}

// Limits bound every request. Zero fields take the defaults of DefaultLimits.
type Limits struct {
	// MaxMessageBytes bounds the body of append, deliver and submit calls
	// (all blobs of the call together).
	MaxMessageBytes int64 `toml:"max_message_bytes,omitzero"`
	// MaxControlBytes bounds JSON bodies and public keys.
	MaxControlBytes int64 `toml:"max_control_bytes,omitzero"`
	// CallsPerSecond and CallBurst rate-limit each account's calls over all
	// its devices on this node. A negative CallsPerSecond disables the limit.
	CallsPerSecond float64 `toml:"calls_per_second,omitzero"`
	CallBurst      int     `toml:"call_burst,omitzero"`
	// StreamCheck is how often an idle event stream re-checks that its
	// device is still enrolled (revocation on another node) and sends a
	// keep-alive line.
	StreamCheck time.Duration `toml:"stream_check,omitzero"`
}

// DefaultLimits are used for zero fields of Limits.
var DefaultLimits = Limits{
	MaxMessageBytes: 64 << 20,
	MaxControlBytes: 1 << 20,
	CallsPerSecond:  400,
	CallBurst:       1000,
	StreamCheck:     30 * time.Second,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxMessageBytes > 0 {
		d.MaxMessageBytes = l.MaxMessageBytes
	}
	if l.MaxControlBytes > 0 {
		d.MaxControlBytes = l.MaxControlBytes
	}
	if l.CallsPerSecond != 0 {
		d.CallsPerSecond = l.CallsPerSecond
	}
	if l.CallBurst > 0 {
		d.CallBurst = l.CallBurst
	}
	if l.StreamCheck > 0 {
		d.StreamCheck = l.StreamCheck
	}
	return d
}

// Config is what NewHandler needs.
type Config struct {
	Store store.Store
	Log   *slog.Logger // must be a logging.New logger (it redacts addresses)
	// Identify returns the caller of a request, or an error wrapping
	// ErrUnauthorized. It is called on every request and on every stream
	// check, so it is where a revoked device is refused.
	Identify func(r *http.Request) (Caller, error)
	// ValidateKey checks a public key before SetPublicKey stores it (an
	// OpenPGP key whose user ids include the account's primary address) and
	// returns the bytes to store (the public part only). Errors wrapping
	// store.ErrInvalid are the client's fault. Nil accepts any non-empty key.
	ValidateKey func(ctx context.Context, acct store.Account, key []byte) ([]byte, error)
	Limits      Limits
	Metrics     *Metrics // nil: unregistered instruments
	Now         func() time.Time
	// GroupCommit says the store commits concurrent writes together (bbolt).
	// The handler then lines up concurrent appends and deliveries so that
	// they reach the store at the same moment (see writeGate). Leave it
	// false for stores whose writes are independent (Redis).
	GroupCommit bool
}

type handler struct {
	cfg     Config
	lim     Limits
	limiter *bucketLimiter
	gate    *writeGate // nil unless Config.GroupCommit
	streams streamSet  // detached event streams
	m       *Metrics
	mux     *http.ServeMux
}

// Write gate timing: the gap covers the spread of writers answered by one
// commit coming back over the network; maxWait bounds the extra latency.
// The gate holds writes only while they average gateSlowWrite or more, a
// store bound by fsyncs of several milliseconds (two per commit), against
// which a millisecond spent merging two groups into one commit is cheap.
const (
	gateGap       = 1 * time.Millisecond
	gateMaxWait   = 4 * time.Millisecond
	gateMaxHeld   = 256
	gateSlowWrite = 20 * time.Millisecond
)

// NewHandler returns the API's HTTP handler.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Identify == nil || cfg.Log == nil {
		return nil, errors.New("api: handler needs a store, a logger and an Identify function")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{cfg: cfg, lim: cfg.Limits.withDefaults(), m: cfg.Metrics, mux: http.NewServeMux()}
	if h.m == nil {
		h.m = NewMetrics(nil)
	}
	h.limiter = newBucketLimiter(h.lim.CallsPerSecond, h.lim.CallBurst, cfg.Now)
	if cfg.GroupCommit {
		h.gate = newWriteGate(gateGap, gateMaxWait, gateMaxHeld, gateSlowWrite)
		h.gate.observe = h.m.WriteGroups.Observe
	}
	h.routes()
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *handler) routes() {
	c, m := h.lim.MaxControlBytes, h.lim.MaxMessageBytes
	h.route("GET /v1/whoami", "whoami", 0, h.whoAmI)
	h.route("GET /v1/key", "lookup_key", 0, h.lookupKey)
	h.route("PUT /v1/key", "set_key", c, h.setKey)
	h.route("GET /v1/mailboxes", "list_mailboxes", 0, h.listMailboxes)
	h.route("POST /v1/mailboxes/create", "create_mailbox", c, h.createMailbox)
	h.route("POST /v1/mailboxes/rename", "rename_mailbox", c, h.renameMailbox)
	h.route("POST /v1/mailboxes/delete", "delete_mailbox", c, h.deleteMailbox)
	h.route("POST /v1/mailboxes/subscribe", "subscribe", c, h.subscribe)
	h.route("POST /v1/messages/list", "list_messages", c, h.listMessages)
	h.route("POST /v1/messages/append", "append", m, h.appendMessage)
	h.route("POST /v1/messages/flags", "flags", c, h.storeFlags)
	h.route("POST /v1/messages/copy", "copy", c, h.copyMessages)
	h.route("POST /v1/messages/move", "move", c, h.moveMessages)
	h.route("POST /v1/messages/expunge", "expunge", c, h.expunge)
	h.route("POST /v1/blobs/headers", "header_blobs", c, h.headerBlobs)
	h.route("GET /v1/blobs/body", "body_blob", 0, h.bodyBlob)
	h.route("POST /v1/deliver", "deliver", m, h.deliver)
	h.route("POST /v1/submit", "submit", m, h.submit)
	h.route("GET /v1/events", "events", 0, h.events)
	h.route("GET /v1/events/stream", "event_stream", 0, h.stream)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such API call"})
	})
}

// trackingWriter remembers whether the response has started, so an error
// after the first byte ends the response instead of writing a second header.
type trackingWriter struct {
	http.ResponseWriter
	started bool
}

func (t *trackingWriter) WriteHeader(code int) { t.started = true; t.ResponseWriter.WriteHeader(code) }
func (t *trackingWriter) Write(p []byte) (int, error) {
	t.started = true
	return t.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

type handlerFunc func(w http.ResponseWriter, r *http.Request, c Caller) error

// route wraps fn with identification, the per-account rate limit, the body
// size limit, error mapping and metrics.
func (h *handler) route(pattern, name string, maxBody int64, fn handlerFunc) {
	h.mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &trackingWriter{ResponseWriter: rw}
		c, err := h.cfg.Identify(r)
		if err == nil && !h.limiter.allow(string(c.Account)) {
			err = ErrRateLimited
		}
		if err == nil {
			if maxBody > 0 {
				r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			}
			err = fn(w, r, c)
		}
		code := "ok"
		if err != nil {
			e, internal := toWire(err)
			code = e.Code
			if internal {
				h.m.StoreErrors.Inc()
				h.cfg.Log.Error("api call failed", "route", name, "err", err)
			}
			if !w.started {
				writeError(w, e)
			}
		}
		h.m.Calls.WithLabelValues(name, code).Inc()
		if name != "event_stream" {
			h.m.Latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}
	})
}

// readBody reads a size-limited request body.
func readBody(r *http.Request) ([]byte, error) {
	// Sized from Content-Length (trusted up to 1 MiB; the body's limit is
	// enforced while reading), so a sealed message is read into one buffer
	// instead of a doubling series of them.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0)+bytes.MinRead, 1<<20)))
	_, err := buf.ReadFrom(r.Body)
	b := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, invalidf("request body could not be read")
	}
	return b, nil
}

// readRequest reads the body and decodes it with one of the DecodeXxx
// functions, so each handler starts from a checked request.
func readRequest[T any](r *http.Request, decode func([]byte) (T, error)) (T, error) {
	b, err := readBody(r)
	if err != nil {
		var zero T
		return zero, err
	}
	return decode(b)
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// queryUint parses an optional unsigned query parameter.
func queryUint(r *http.Request, name string, def uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil || fmt.Sprint(v) != s {
		return 0, invalidf("query parameter %s must be an unsigned integer", name)
	}
	return v, nil
}
