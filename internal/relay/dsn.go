package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// bounce builds the DSN for e's failed recipients, seals it to the sending
// account's key and appends it to that account's INBOX.
func (r *Relay) bounce(ctx context.Context, e store.QueueEntry) error {
	acct := e.Account
	if acct == "" {
		id, err := r.st.LookupAddress(ctx, e.From)
		if err != nil {
			return fmt.Errorf("relay: dsn: sender: %w", err)
		}
		acct = id
	}
	bin, err := r.st.PublicKey(ctx, acct)
	if err != nil {
		return fmt.Errorf("relay: dsn: key: %w", err)
	}
	key, err := pgp.ReadKey(bin)
	if err != nil {
		return fmt.Errorf("relay: dsn: key: %w", err)
	}
	dsn, err := BuildDSN(r.cfg.Hostname, e, r.cfg.Now())
	if err != nil {
		return err
	}
	hb, bb, err := sealDSN(dsn, key)
	if err != nil {
		return fmt.Errorf("relay: dsn: seal: %w", err)
	}
	_, err = r.st.Append(ctx, acct, "INBOX", store.NewMessage{
		Size: int64(len(dsn)), HeaderBlob: hb, BodyBlob: bb, InternalDate: r.cfg.Now(),
	})
	if err != nil {
		return fmt.Errorf("relay: dsn: append: %w", err)
	}
	return nil
}

// BuildDSN writes an RFC 3464 delivery status notification (a
// multipart/report, RFC 6522) about e's failed recipients, with the
// original message's header section attached.
func BuildDSN(hostname string, e store.QueueEntry, now time.Time) ([]byte, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	var h message.Header
	h.Set("From", "Mail Delivery System <MAILER-DAEMON@"+hostname+">")
	h.Set("To", "<"+e.From+">")
	h.Set("Subject", "Undelivered Mail Returned to Sender")
	h.Set("Date", now.UTC().Format(time.RFC1123Z))
	h.Set("Message-ID", "<dsn."+hex.EncodeToString(rnd[:])+"@"+hostname+">")
	h.Set("Auto-Submitted", "auto-replied")
	h.Set("MIME-Version", "1.0")
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("relay: dsn: %w", err)
	}
	var failed []store.QueueRecipient
	for _, rc := range e.Recipients {
		if rc.Failed {
			failed = append(failed, rc)
		}
	}
	if err := writeDSNText(w, failed); err != nil {
		return nil, err
	}
	if err := writeDSNStatus(w, hostname, e, failed); err != nil {
		return nil, err
	}
	if err := writeDSNHeaders(w, e.Payload); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("relay: dsn: %w", err)
	}
	return buf.Bytes(), nil
}

func writeDSNText(w *message.Writer, failed []store.QueueRecipient) error {
	var ph message.Header
	ph.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	pw, err := w.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("relay: dsn: %w", err)
	}
	fmt.Fprint(pw, "Your message could not be delivered to these recipients:\r\n\r\n")
	for _, rc := range failed {
		fmt.Fprintf(pw, "  %s: %s\r\n", rc.Address, rc.LastError)
	}
	return pw.Close()
}

func writeDSNStatus(w *message.Writer, hostname string, e store.QueueEntry, failed []store.QueueRecipient) error {
	var ph message.Header
	ph.SetContentType("message/delivery-status", nil)
	pw, err := w.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("relay: dsn: %w", err)
	}
	fmt.Fprintf(pw, "Reporting-MTA: dns; %s\r\n", hostname)
	if !e.Created.IsZero() {
		fmt.Fprintf(pw, "Arrival-Date: %s\r\n", e.Created.UTC().Format(time.RFC1123Z))
	}
	for _, rc := range failed {
		fmt.Fprintf(pw, "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n", rc.Address, dsnStatus(rc.LastError))
		if rc.LastError != "" {
			fmt.Fprintf(pw, "Diagnostic-Code: smtp; %s\r\n", rc.LastError)
		}
	}
	return pw.Close()
}

// writeDSNHeaders attaches the original header section (RFC 6522 text/
// rfc822-headers), not the body: the body may be large or encrypted.
func writeDSNHeaders(w *message.Writer, payload []byte) error {
	var ph message.Header
	ph.SetContentType("text/rfc822-headers", nil)
	pw, err := w.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("relay: dsn: %w", err)
	}
	if len(payload) > 0 {
		if th, err := textproto.ReadHeader(bufioReader(payload)); err == nil {
			if err := textproto.WriteHeader(pw, th); err != nil {
				return fmt.Errorf("relay: dsn: %w", err)
			}
		}
	}
	return pw.Close()
}

// dsnStatus extracts the enhanced status code (RFC 3463) from a reply text
// like "550 5.1.1 no such user"; expiry and unknown errors map to 4.4.7 and
// 5.0.0.
func dsnStatus(lastErr string) string {
	if strings.HasPrefix(lastErr, "expired") {
		return "4.4.7"
	}
	f := strings.Fields(lastErr)
	if len(f) >= 2 && len(f[1]) >= 5 && (f[1][0] == '5' || f[1][0] == '4') && f[1][1] == '.' {
		return f[1]
	}
	return "5.0.0"
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// sealDSN seals the DSN for its owner: the header blob is the sealed
// summary the message list needs, the body blob the sealed DSN.
func sealDSN(dsn []byte, key *pgp.Key) (hb, bb []byte, err error) {
	hb, bb, _, err = pgp.SealMessage(dsn, []*pgp.Key{key}, pgp.SealOptions{})
	return hb, bb, err
}
