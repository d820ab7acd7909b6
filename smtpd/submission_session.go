package smtpd

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smessenger/bridge"
	"smessenger/internal/store"
)

// Fixed replies of the submission server; the text is generic on purpose.
var (
	subReplyAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	subReplyAuthFailed   = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	subReplyTLSRequired  = &smtp.SMTPError{Code: 523, EnhancedCode: smtp.EnhancedCode{5, 7, 10}, Message: "Use STARTTLS before AUTH from a remote host"}
	subReplyTempFail     = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	subReplyTooLarge     = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too large"}
)

// subSession is one SMTP session (renewed after STARTTLS).
type subSession struct {
	sub    *Submission
	conn   *smtp.Conn
	ctx    context.Context
	cancel context.CancelFunc

	sender Sender
	from   string
	rcpts  []string
}

var _ smtp.AuthSession = (*subSession)(nil)

// Reset implements smtp.Session.
func (s *subSession) Reset() {
	s.from = ""
	s.rcpts = nil
}

// Logout implements smtp.Session.
func (s *subSession) Logout() error {
	s.cancel()
	return nil
}

// AuthMechanisms implements smtp.AuthSession.
func (s *subSession) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements smtp.AuthSession.
func (s *subSession) Auth(mech string) (sasl.Server, error) {
	if _, isTLS := s.conn.TLSConnectionState(); !isTLS && !subIsLoopback(s.conn.Conn()) {
		return nil, subReplyTLSRequired
	}
	check := func(user, pass string) error {
		snd, ok := s.sub.cfg.Auth(user, pass)
		if !ok || snd == nil {
			return subReplyAuthFailed
		}
		s.sender = snd
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return subReplyAuthFailed
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &subLoginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnsupported
}

// Mail implements smtp.Session: the envelope sender must be one of the
// user's addresses.
func (s *subSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.sender == nil {
		return subReplyAuthRequired
	}
	if !subOwns(s.sender, from) {
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "<" + subPrintable(from) + ">: sender address is not an address of this account"}
	}
	s.from = from
	return nil
}

// Rcpt implements smtp.Session: recipients the router cannot serve are
// refused here, naming the recipient, so the client shows which one.
func (s *subSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.sender == nil {
		return subReplyAuthRequired
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.sub.cfg.SendTimeout)
	defer cancel()
	if err := s.sender.CheckRecipient(ctx, to); err != nil {
		return s.reply(err)
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data implements smtp.Session. 250 is said only after Send returned nil,
// i.e. after every copy was committed on the server.
func (s *subSession) Data(r io.Reader) error {
	if s.sender == nil {
		return subReplyAuthRequired
	}
	// DATA is read into a recycled buffer (the MX's pool), which Send does
	// not keep: a 10 KB message regrown from nothing costs 30 KB of garbage.
	pooled := mxGetBuffer()
	buf, err := mxReadData(*pooled, r)
	*pooled = buf
	defer mxPutBuffer(pooled)
	raw := buf[mxHeadroom:]
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code == 552 {
			return subReplyTooLarge
		}
		return subReplyTempFail
	}
	if int64(len(raw)) > s.sub.cfg.MaxMessageBytes {
		return subReplyTooLarge
	}
	raw = bridge.NormalizeNewlines(raw)
	if err := subCheckFrom(s.sender, raw); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.sub.cfg.SendTimeout)
	defer cancel()
	if err := s.sender.Send(ctx, s.from, s.rcpts, raw); err != nil {
		return s.reply(err)
	}
	return nil
}

// subOwns reports whether addr is one of the sender's addresses.
func subOwns(snd Sender, addr string) bool {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr == "" {
		return false
	}
	for _, a := range snd.Addresses() {
		if strings.ToLower(a) == addr {
			return true
		}
	}
	return false
}

var subAddrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: message.CharsetReader}}

// subCheckFrom refuses a message whose From field is missing, unparsable,
// or names an address that is not the user's: Thunderbird's identity
// choice must be honoured, and nobody may use the bridge to impersonate.
func subCheckFrom(snd Sender, raw []byte) error {
	hdr, _ := mxSplitHeader(raw)
	v := mxHeaderValue(hdr, "From")
	if v == "" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "The message has no From field"}
	}
	list, err := subAddrParser.ParseList(v)
	if err != nil || len(list) == 0 {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "The From field cannot be parsed"}
	}
	for _, a := range list {
		if !subOwns(snd, a.Address) {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
				Message: "From <" + subPrintable(a.Address) + "> is not an address of this account"}
		}
	}
	return nil
}

// subPrintable keeps a client-supplied string safe for one reply line.
func subPrintable(s string) string {
	if len(s) > 256 {
		s = s[:256]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// reply turns a Sender error into the SMTP reply. Only a *bridge.SendError
// carries text meant for the user; anything else is logged and answered
// with a generic temporary failure.
func (s *subSession) reply(err error) error {
	var se *bridge.SendError
	if !errors.As(err, &se) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return subReplyTempFail
		}
		s.sub.log.Warn("smtpd: submission failed", "err", err)
		return subReplyTempFail
	}
	msg := subPrintable(se.PublicMessage())
	code, enh := 550, smtp.EnhancedCode{5, 7, 1}
	switch {
	case se.Temporary:
		code, enh = 451, smtp.EnhancedCode{4, 3, 0}
	case errors.Is(err, bridge.ErrNotOwnAddress):
		code, enh = 553, smtp.EnhancedCode{5, 7, 1}
	case errors.Is(err, bridge.ErrBadMessage):
		code, enh = 554, smtp.EnhancedCode{5, 6, 0}
	case errors.Is(err, bridge.ErrBadAddress):
		code, enh = 553, smtp.EnhancedCode{5, 1, 3}
	case errors.Is(err, bridge.ErrUnknownRecipient):
		code, enh = 550, smtp.EnhancedCode{5, 1, 1}
	case errors.Is(err, store.ErrQuotaExceeded):
		code, enh = 552, smtp.EnhancedCode{5, 2, 2}
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}
