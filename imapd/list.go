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
	// Parents that do not exist (only "a/b" was created) are listed too, so
	// clients can draw the tree; LSUB and the LIST-EXTENDED selections do
	// not get them (RFC 5258 section 3 returns those only with
	// RECURSIVEMATCH, which go-imap passes on but we do not implement).
	implied := !options.SelectSubscribed && !options.SelectSpecialUse
	shown := map[string]bool{}
	for _, b := range boxes {
		if implied {
			if err := s.listMissingParents(w, b.Name, names, shown, ref, patterns); err != nil {
				return err
			}
		}
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

// listMissingParents writes the ancestors of name that are not mailboxes
// and match the patterns, once each, outermost first. They carry \Noselect
// (RFC 3501 section 6.3.8) and, for IMAP4rev2 clients, \NonExistent, which
// RFC 9051 section 7.3.1 uses for them (it implies \Noselect).
func (s *session) listMissingParents(w *imapserver.ListWriter, name string, names, shown map[string]bool, ref string, patterns []string) error {
	for _, parent := range ancestors(name) {
		if names[parent] || shown[parent] || !matchAny(parent, ref, patterns) {
			continue
		}
		shown[parent] = true
		attrs := []imap.MailboxAttr{imap.MailboxAttrNoSelect, imap.MailboxAttrHasChildren}
		if s.conn != nil && s.conn.EnabledCaps().Has(imap.CapIMAP4rev2) {
			attrs = append([]imap.MailboxAttr{imap.MailboxAttrNonExistent}, attrs...)
		}
		if err := w.WriteList(&imap.ListData{Attrs: attrs, Delim: delim, Mailbox: parent}); err != nil {
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

// ancestors returns the names above name in the hierarchy, outermost first:
// "a/b/c" gives "a" and "a/b". Empty levels ("a//b", "/a") are skipped: they
// are not names a client could select.
func ancestors(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == delim && i > 0 && name[i-1] != delim {
			out = append(out, name[:i])
		}
	}
	return out
}
