package imapd

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"smessenger/bridge"
)

// List implements imapserver.Session: LIST with SPECIAL-USE attributes,
// CHILDREN (RFC 3348), LIST-EXTENDED selection (RFC 5258) and LIST-STATUS
// (RFC 5819); LSUB comes through here with SelectSubscribed.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// An empty pattern asks for the delimiter and root (RFC 9051 6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	boxes, err := s.view.Mailboxes(s.ctx)
	if err != nil {
		return s.toIMAP("list", err, false)
	}
	names := make(map[string]bool, len(boxes))
	for _, b := range boxes {
		names[b.Name] = true
	}
	for _, b := range boxes {
		if !matchAny(b.Name, ref, patterns) {
			continue
		}
		if options.SelectSubscribed && !b.Subscribed {
			continue
		}
		if options.SelectSpecialUse && b.SpecialUse == "" {
			continue
		}
		data := s.listData(b, hasChildren(b.Name, boxes), options)
		if options.ReturnStatus != nil {
			if data.Status, err = s.statusData(b, options.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) listData(b bridge.MailboxInfo, children bool, options *imap.ListOptions) *imap.ListData {
	data := &imap.ListData{Delim: delim, Mailbox: b.Name}
	if children {
		data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
	} else {
		data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
	}
	if b.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
		data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
	}
	// Special-use attributes are sent on every LIST, not only on RETURN
	// (SPECIAL-USE): clients such as Thunderbird read them from plain LIST.
	if b.SpecialUse != "" {
		data.Attrs = append(data.Attrs, imap.MailboxAttr(b.SpecialUse))
	}
	return data
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if name == "INBOX" && strings.EqualFold(ref+p, "INBOX") {
			return true
		}
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
	}
	return false
}

func hasChildren(name string, boxes []bridge.MailboxInfo) bool {
	prefix := name + string(delim)
	for _, b := range boxes {
		if strings.HasPrefix(b.Name, prefix) {
			return true
		}
	}
	return false
}
