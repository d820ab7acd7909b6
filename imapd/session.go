package imapd

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"smessenger/bridge"
)

// delim is the hierarchy delimiter of every mailbox name.
const delim = '/'

// session is one client connection. imapserver calls its methods from one
// goroutine, except Idle, which runs beside the connection's reader.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	ctx    context.Context
	cancel context.CancelFunc

	view bridge.View
	sel  *selection
}

// selection is the selected mailbox of a session.
type selection struct {
	st       *mailboxState
	tr       *imapserver.SessionTracker
	readOnly bool
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

// Close implements imapserver.Session.
func (s *session) Close() error {
	s.unselect()
	s.cancel()
	return nil
}

// Login implements imapserver.Session.
func (s *session) Login(username, password string) error {
	view, ok := s.srv.cfg.Users.CheckPassword(username, password)
	if !ok || view == nil {
		return imapserver.ErrAuthFailed
	}
	// Sessions share mailbox state keyed by the view, so it must be usable
	// as a map key; a non-comparable view would panic there.
	if !reflect.TypeOf(view).Comparable() {
		s.srv.log.Error("imapd: the authenticator returned a view that is not comparable")
		return errUnavailable
	}
	s.view = view
	return nil
}

// AppendLimit implements imapserver.SessionAppendLimit.
func (s *session) AppendLimit() uint32 { return s.srv.cfg.AppendLimit }

// Namespace implements imapserver.SessionNamespace: one personal namespace
// with the empty prefix (RFC 2342).
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// cleanName normalises a client's mailbox name: INBOX in any case is INBOX,
// and a trailing delimiter (allowed on CREATE) is dropped.
func cleanName(name string) string {
	name = strings.TrimRight(name, string(delim))
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// Create implements imapserver.Session.
func (s *session) Create(mailbox string, _ *imap.CreateOptions) error {
	name := cleanName(mailbox)
	if name == "" {
		return errInvalid
	}
	return s.toIMAP("create", s.view.CreateMailbox(s.ctx, name), false)
}

// Delete implements imapserver.Session.
func (s *session) Delete(mailbox string) error {
	return s.toIMAP("delete", s.view.DeleteMailbox(s.ctx, cleanName(mailbox)), false)
}

// Rename implements imapserver.Session.
func (s *session) Rename(mailbox, newName string, _ *imap.RenameOptions) error {
	to := cleanName(newName)
	if to == "" {
		return errInvalid
	}
	from := cleanName(mailbox)
	if err := s.view.RenameMailbox(s.ctx, from, to); err != nil {
		return s.toIMAP("rename", err, false)
	}
	s.srv.renamed(s.view, from, to)
	return nil
}

// Subscribe implements imapserver.Session.
func (s *session) Subscribe(mailbox string) error {
	return s.toIMAP("subscribe", s.view.SetSubscribed(s.ctx, cleanName(mailbox), true), false)
}

// Unsubscribe implements imapserver.Session.
func (s *session) Unsubscribe(mailbox string) error {
	return s.toIMAP("unsubscribe", s.view.SetSubscribed(s.ctx, cleanName(mailbox), false), false)
}

// Status implements imapserver.Session.
func (s *session) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	info, err := s.view.Mailbox(s.ctx, cleanName(mailbox))
	if err != nil {
		return nil, s.toIMAP("status", err, false)
	}
	return s.statusData(info, options)
}

func (s *session) statusData(info bridge.MailboxInfo, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: info.Name, UIDNext: imap.UID(info.UIDNext), UIDValidity: info.UIDValidity}
	if options.NumMessages {
		data.NumMessages = ptr(info.Messages)
	}
	if options.NumUnseen {
		data.NumUnseen = ptr(info.Unseen)
	}
	if options.Size {
		data.Size = ptr(info.Size)
	}
	if options.NumRecent {
		data.NumRecent = ptr(uint32(0)) // \Recent is not kept: IMAP4rev2 dropped it
	}
	if options.AppendLimit {
		data.AppendLimit = ptr(s.srv.cfg.AppendLimit)
	}
	if options.NumDeleted || options.DeletedStorage {
		msgs, err := s.view.MessageList(s.ctx, info.Name)
		if err != nil {
			return nil, s.toIMAP("status", err, false)
		}
		var n uint32
		var size int64
		for _, m := range msgs {
			if hasFlag(m.Flags, string(imap.FlagDeleted)) {
				n++
				size += m.Size
			}
		}
		if options.NumDeleted {
			data.NumDeleted = &n
		}
		if options.DeletedStorage {
			data.DeletedStorage = &size
		}
	}
	return data, nil
}

func ptr[T any](v T) *T { return &v }

// Append implements imapserver.Session. The view seals the message to the
// account's own key before it leaves the machine; APPENDUID is the server's.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	limit := int64(s.srv.cfg.AppendLimit)
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, errUnavailable
	}
	if int64(len(raw)) > limit {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message too big"}
	}
	if _, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw))); err != nil || len(raw) == 0 {
		return nil, errParse
	}
	var flags []string
	for _, f := range options.Flags {
		if !strings.EqualFold(string(f), string(flagRecent)) && !hasFlag(flags, string(f)) {
			flags = append(flags, string(f))
		}
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	name := cleanName(mailbox)
	var uidValidity, uid uint32
	err = s.srv.gates.adding(name, func() (err error) {
		uidValidity, uid, err = s.view.Append(s.ctx, name, raw, flags, date)
		return err
	})
	if err != nil {
		return nil, s.toIMAP("append", err, true)
	}
	s.refreshIfSelected(name)
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: uidValidity}, nil
}

// refreshIfSelected adds new messages of mailbox to the shared state now
// instead of when the view's update arrives, so a client that appended or
// copied into its selected mailbox gets EXISTS before the tagged OK.
func (s *session) refreshIfSelected(mailbox string) {
	if s.sel == nil || s.sel.st.name() != mailbox {
		return
	}
	s.sel.st.refresh(s.ctx)
}
