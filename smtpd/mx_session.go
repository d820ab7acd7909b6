package smtpd

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// Fixed replies. Their text is generic on purpose: no internal detail goes
// on the wire.
var (
	replyRelayDenied = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied"}
	replyNoUser      = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	replyBadAddress  = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}
	replyTempFail    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	replyNoKey       = &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "Mailbox temporarily unavailable"}
	replyMailboxFull = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full"}
	replyBareNewline = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Bare CR or LF not allowed"}
	replyHeaderBig   = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message header too large"}
	replyTooComplex  = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message structure too complex"}
	replyDMARCReject = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Rejected by the sender domain's DMARC policy"}
	replyDataTimeout = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Data transfer took too long"}
	replyLineTooLong = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 4, 0}, Message: "Line too long"}
)

// mxRcpt is one accepted recipient.
type mxRcpt struct {
	addr string
	acct store.AccountID
}

// mxSession is one SMTP session (per EHLO, renewed after STARTTLS).
type mxSession struct {
	mx    *MX
	conn  *smtp.Conn
	src   mxSource
	from  string
	rcpts []mxRcpt
}

var _ smtp.Session = (*mxSession)(nil)

// Reset implements smtp.Session.
func (s *mxSession) Reset() {
	s.from = ""
	s.rcpts = nil
}

// Logout implements smtp.Session.
func (s *mxSession) Logout() error { return nil }

// Mail implements smtp.Session. The envelope sender is used for SPF only.
func (s *mxSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.mx.limiter.command(s.src) {
		return errRateLimited
	}
	if strings.ContainsAny(from, "\r\n\x00") || len(from) > 512 {
		return replyBadAddress
	}
	s.from = from
	s.rcpts = nil
	return nil
}

// Rcpt implements smtp.Session: only existing local addresses, never relay.
func (s *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.mx.limiter.command(s.src) {
		return errRateLimited
	}
	addr, err := mxLocalAddress(to)
	if err != nil {
		return err
	}
	_, domain, _ := strings.Cut(addr, "@")
	if !s.mx.localDomain(domain) {
		return replyRelayDenied
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := s.mx.cfg.Now()
	acct, err := s.mx.dir.lookup(ctx, s.mx.st, addr, now)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAccountNotFound):
		return replyNoUser
	case errors.Is(err, errMailboxFull):
		return replyMailboxFull
	case err != nil:
		s.mx.log.Warn("mx: address lookup failed", "err", err)
		return replyTempFail
	}
	// Fetch the key now so a recipient we cannot seal for is refused before
	// the sender transfers the message.
	if _, err := s.mx.keys.get(ctx, s.mx.st, acct, now); err != nil {
		s.mx.log.Warn("mx: recipient key unavailable", "err", err)
		return replyNoKey
	}
	s.rcpts = append(s.rcpts, mxRcpt{addr: addr, acct: acct})
	return nil
}

// mxLocalAddress validates a RCPT path and returns it lower-cased. Source
// routes (RFC 5321 appendix C), the percent hack, bang paths and quoted
// local parts are refused outright: each is a classic way to make a naive
// MX relay, and none is used by legitimate mail to our users.
func mxLocalAddress(to string) (string, error) {
	if to == "" || len(to) > 254 || strings.ContainsAny(to, "\r\n\x00 \t") {
		return "", replyBadAddress
	}
	if strings.HasPrefix(to, "@") || strings.Contains(to, ":") {
		return "", replyRelayDenied
	}
	i := strings.LastIndexByte(to, '@')
	if i <= 0 || i == len(to)-1 {
		return "", replyBadAddress
	}
	local := to[:i]
	if strings.ContainsAny(local, "%!@\"\\,[]<>()") {
		return "", replyRelayDenied
	}
	return store.NormalizeAddress(to), nil
}

// Data implements smtp.Session: read under a hard deadline, check, seal in
// memory, commit for every recipient, and only then return nil (250).
func (s *mxSession) Data(r io.Reader) error {
	if !s.mx.limiter.command(s.src) {
		return errRateLimited
	}
	conn := s.conn.Conn()
	_ = conn.SetReadDeadline(time.Now().Add(s.mx.cfg.DataTimeout))
	if mc, ok := conn.(*mxConn); ok { // plaintext; TLS reads whole records already
		mc.setReadAhead(true)
		defer mc.setReadAhead(false)
	}
	bp := mxGetBuffer()
	defer mxPutBuffer(bp)
	buf, err := mxReadData(*bp, r)
	*bp = buf[:0]
	if err != nil {
		return mxDataReadError(err)
	}
	raw := buf[mxHeadroom:]
	if err := mxCheckMessage(raw, s.mx.cfg.MaxHeaderBytes); err != nil {
		return mxLimitReply(err)
	}
	hdr, _ := mxSplitHeader(raw)
	var ip net.IP
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ip = ta.IP
	}
	ar := s.mx.authenticate(ip, s.conn.Hostname(), s.from, raw, hdr)
	if ar.reject {
		return replyDMARCReject
	}
	msg := mxPrepend(buf, ar.header)
	sum, err := pgp.SummarizeLimited(msg, pgp.Limits{MaxParts: s.mx.cfg.MaxParts, MaxDepth: s.mx.cfg.MaxDepth})
	if err != nil {
		return mxLimitReply(err)
	}
	return s.deliver(msg, pgp.EncodeSummary(sum))
}

// deliver seals msg once per distinct account and appends it to INBOX.
// The appends of one message run concurrently, and so do those of all
// sessions: the store's group commit then shares one fsync among them. A
// failure after some appends makes the sender retry: a duplicate is better
// than a loss.
func (s *mxSession) deliver(msg, summary []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var accts []store.AccountID
	var sealed []mxSealed
	for _, rc := range s.rcpts {
		if slices.Contains(accts, rc.acct) {
			continue
		}
		key, err := s.mx.keys.get(ctx, s.mx.st, rc.acct, s.mx.cfg.Now())
		if err != nil {
			s.mx.log.Warn("mx: recipient key unavailable", "err", err)
			return replyTempFail
		}
		b, err := mxSeal(summary, msg, key)
		if err != nil {
			s.mx.log.Warn("mx: sealing failed", "err", err)
			return replyTooComplex
		}
		accts = append(accts, rc.acct)
		sealed = append(sealed, b)
	}
	errs := make([]error, len(accts))
	now := s.mx.cfg.Now()
	if len(accts) == 1 {
		errs[0] = s.mx.appendSealed(ctx, accts[0], sealed[0], len(msg), now)
	} else {
		var wg sync.WaitGroup
		for i := range accts {
			wg.Go(func() { errs[i] = s.mx.appendSealed(ctx, accts[i], sealed[i], len(msg), now) })
		}
		wg.Wait()
	}
	for _, err := range errs {
		if errors.Is(err, store.ErrQuotaExceeded) {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
		}
		if err != nil {
			s.mx.log.Warn("mx: append failed", "err", err)
			return replyTempFail
		}
	}
	s.mx.log.Info("mx: message accepted", "size", len(msg), "recipients", len(accts))
	return nil
}

// appendSealed commits one sealed copy to the account's INBOX; it returns
// once the store made it durable.
func (m *MX) appendSealed(ctx context.Context, acct store.AccountID, b mxSealed, size int, now time.Time) error {
	_, err := m.st.Append(ctx, acct, "INBOX", store.NewMessage{
		Size: int64(size), HeaderBlob: b.header, BodyBlob: b.body, InternalDate: now,
	})
	return err
}

func mxDataReadError(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se // ErrDataTooLarge: 552
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		return replyLineTooLong
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return replyDataTimeout
	}
	return replyTempFail
}

func mxLimitReply(err error) error {
	switch {
	case errors.Is(err, ErrBareNewline):
		return replyBareNewline
	case errors.Is(err, ErrHeaderTooBig):
		return replyHeaderBig
	}
	return replyTooComplex
}

// mxSourceOf returns the rate-limit key of a connection made by our listener.
func mxSourceOf(c net.Conn) mxSource {
	if mc := mxConnOf(c); mc != nil {
		return mc.src
	}
	return mxSource{}
}
