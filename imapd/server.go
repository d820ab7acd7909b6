package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"smessenger/bridge"
	"smessenger/internal/logging"
)

// DefaultAppendLimit is the largest message APPEND accepts when
// Config.AppendLimit is zero.
const DefaultAppendLimit = 50 << 20

// ErrNoTLS is returned by ServeTLS when the server has no TLS configuration.
var ErrNoTLS = errors.New("imapd: no TLS configuration")

// Authenticator checks a mail client's login. CheckPassword returns the
// account's mailbox view and true when username and password (the bridge
// password, never the OpenPGP passphrase) are right. It must be safe for
// concurrent use and should take the same time for a wrong user as for a
// wrong password. The View it returns must be comparable (a pointer, as
// *bridge.Account is) and the same value for every login of one account:
// sessions of one account share mailbox state keyed by it.
type Authenticator interface {
	CheckPassword(username, password string) (bridge.View, bool)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(username, password string) (bridge.View, bool)

// CheckPassword implements Authenticator.
func (f AuthenticatorFunc) CheckPassword(username, password string) (bridge.View, bool) {
	return f(username, password)
}

// Config configures a Server.
type Config struct {
	// Users checks logins. Required.
	Users Authenticator
	// TLS enables STARTTLS on Serve and is required by ServeTLS (IMAPS).
	TLS *tls.Config
	// Logger receives errors; it should be built by internal/logging so no
	// address is ever printed. Nil discards.
	Logger *slog.Logger
	// AppendLimit is the largest APPEND in bytes; 0 means DefaultAppendLimit.
	AppendLimit uint32
}

// Server is the IMAP front end. It is safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	imap   *imapserver.Server
	ctx    context.Context
	cancel context.CancelFunc
	panics atomic.Int64

	gates *appendGates

	mu     sync.Mutex
	states map[stateKey]*mailboxState
}

// capabilities are what the session supports beyond what imapserver adds by
// itself (IDLE, UNSELECT, ENABLE, SASL-IR, LITERAL-, STARTTLS).
var capabilities = imap.CapSet{
	imap.CapIMAP4rev1:    {},
	imap.CapIMAP4rev2:    {},
	imap.CapNamespace:    {},
	imap.CapUIDPlus:      {},
	imap.CapESearch:      {},
	imap.CapListExtended: {},
	imap.CapListStatus:   {},
	imap.CapMove:         {},
	imap.CapStatusSize:   {},
	imap.CapBinary:       {},
	imap.CapChildren:     {},
	imap.CapSpecialUse:   {},
	imap.CapLiteralPlus:  {},
	imap.CapAppendLimit:  {},
}

// New builds a server; call Serve or ServeTLS to accept clients.
func New(cfg Config) *Server {
	if cfg.AppendLimit == 0 {
		cfg.AppendLimit = DefaultAppendLimit
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Wrap again so that even a caller's plain logger cannot print an address.
	log = slog.New(logging.NewHandler(log.Handler()))
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: log, ctx: ctx, cancel: cancel, states: make(map[stateKey]*mailboxState), gates: newAppendGates()}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps:       capabilities,
		Logger:     libLogger{s},
		TLSConfig:  cfg.TLS,
		// Loopback only: the password never crosses a network.
		InsecureAuth: true,
	})
	return s
}

// Serve accepts plaintext connections (with STARTTLS if Config.TLS is set)
// on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	return s.imap.Serve(l)
}

// ServeTLS accepts IMAPS connections (TLS from the first byte) on l.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLS == nil {
		return ErrNoTLS
	}
	return s.imap.Serve(tls.NewListener(l, s.cfg.TLS))
}

// Close stops the listeners, closes every connection and stops watching
// mailboxes.
func (s *Server) Close() error {
	err := s.imap.Close()
	s.cancel()
	s.mu.Lock()
	for k, st := range s.states {
		st.stop()
		delete(s.states, k)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("imapd: close: %w", err)
	}
	return nil
}

// Panics reports how many panics were recovered (per connection, per IDLE
// goroutine, per mailbox watcher). Tests assert it stays zero.
func (s *Server) Panics() int64 { return s.panics.Load() }

func (s *Server) recovered(where string, v any) {
	s.panics.Add(1)
	s.log.Error("imapd: recovered panic", "where", where, "panic", fmt.Sprint(v))
}

// libLogger routes imapserver's messages through the redacting logger and
// counts the panics the library recovered.
type libLogger struct{ s *Server }

func (l libLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(msg, "panic") {
		l.s.panics.Add(1)
		l.s.log.Error("imapd: " + logging.Redact(msg))
		return
	}
	l.s.log.Warn("imapd: " + logging.Redact(msg))
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ctx, cancel := context.WithCancel(s.ctx)
	return &session{srv: s, conn: c, ctx: ctx, cancel: cancel}, nil, nil
}
