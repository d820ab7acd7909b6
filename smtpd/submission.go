package smtpd

// The submission server: the bridge's SMTP front end for the user's mail
// client, on 127.0.0.1 (RFC 6409 message submission over RFC 5321 SMTP,
// with RFC 3207 STARTTLS, RFC 4954 AUTH with the PLAIN (RFC 4616) and LOGIN
// mechanisms, RFC 1870 SIZE, RFC 6152 8BITMIME and RFC 6531 SMTPUTF8). It
// translates the protocol into calls on a Sender (the bridge's Router) and
// holds no routing logic.

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/internal/logging"
)

// DefaultSubmissionAddr is where the bridge listens for its mail client.
const DefaultSubmissionAddr = "127.0.0.1:1025"

// DefaultSubmissionMaxBytes is the default message size limit (50 MiB):
// large attachments are common in submissions, and the server's API limit
// (64 MiB per call, sealed) must still fit one.
const DefaultSubmissionMaxBytes = 50 << 20

// Sender is what the submission server needs from the bridge for one
// authenticated user; *bridge.Router implements it.
//
// CheckRecipient is called at RCPT time: nil accepts the recipient; a
// refusal should be a *bridge.SendError, whose public text names the
// recipient and the reason and is shown to the client. Send must return
// nil only when every copy (recipients and Sent) is durably committed.
// Send must not keep raw once it returns: the submission server reads the
// next message into the same buffer.
type Sender interface {
	Addresses() []string
	CheckRecipient(ctx context.Context, rcpt string) error
	Send(ctx context.Context, from string, rcpts []string, raw []byte) error
}

// SubmissionConfig configures the submission server.
type SubmissionConfig struct {
	// Auth checks the mail client's credentials (the bridge password) and
	// returns the user's Sender. Required.
	Auth func(user, pass string) (Sender, bool)
	// TLS enables STARTTLS with the bridge's local certificate; nil: none.
	TLS *tls.Config
	// MaxMessageBytes is the SIZE limit; over it the reply is 552.
	// Default DefaultSubmissionMaxBytes.
	MaxMessageBytes int64
	// MaxRecipients per message; default 100 (over it: 452).
	MaxRecipients int
	// Hostname is the name in the greeting; default "localhost".
	Hostname string
	// SendTimeout bounds one message's routing and commit; default 5 min.
	SendTimeout time.Duration
	// Logger receives errors, through a handler that cannot print an IP
	// address; nil discards.
	Logger *slog.Logger
}

// Submission is the SMTP submission server.
//
// Plaintext AUTH (without STARTTLS) is accepted only from loopback peers:
// the connection never leaves the machine, and many clients refuse or
// complicate a self-signed certificate. From any other peer AUTH requires
// STARTTLS first (523), so a submission port that is exposed by mistake
// does not take passwords in the clear.
type Submission struct {
	cfg SubmissionConfig
	log *slog.Logger
	frontEnd
}

// NewSubmission builds the server. It does not listen; call Serve.
func NewSubmission(cfg SubmissionConfig) *Submission {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultSubmissionMaxBytes
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 100
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 5 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	} else {
		log = slog.New(logging.NewHandler(log.Handler()))
	}
	s := &Submission{cfg: cfg, log: log}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cfg.Hostname
	srv.TLSConfig = cfg.TLS
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	// Per-session checks in subSession.Auth decide who may authenticate
	// without TLS (loopback only); go-smtp's switch is all or nothing.
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = logging.StdLogger(log)
	s.srv = srv
	return s
}

// Serve accepts connections on l until Close.
func (s *Submission) Serve(l net.Listener) error {
	return s.serve(l)
}

// Close stops the listeners and closes every connection. A message whose
// DATA had not been answered is not committed; the client retries it.
func (s *Submission) Close() error { return s.close() }

func (s *Submission) newSession(c *smtp.Conn) (smtp.Session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	return &subSession{sub: s, conn: c, ctx: ctx, cancel: cancel}, nil
}

// subIsLoopback reports whether the peer of c is on this machine.
func subIsLoopback(c net.Conn) bool {
	if c == nil {
		return false
	}
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
