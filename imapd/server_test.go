package imapd

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestCapabilities(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.client(nil)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapIdle, imap.CapNamespace,
		imap.CapUIDPlus, imap.CapMove, imap.CapSpecialUse, imap.CapEnable, imap.CapLiteralPlus, imap.CapUnselect,
		imap.CapChildren, imap.CapListStatus, imap.CapStatusSize, imap.CapESearch, "APPENDLIMIT=52428800"} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing from %v", want, caps)
		}
	}
}

func TestLoginRejected(t *testing.T) {
	env := newTestEnv(t, nil)
	c, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Login(testUser, "wrong").Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err == nil {
		t.Fatal("SELECT worked without login")
	}
}

func TestListSpecialUseChildrenStatus(t *testing.T) {
	env := newTestEnv(t, nil)
	env.view.deliver("INBOX", simpleMsg)
	c := env.client(nil)
	if err := c.Create("Work/Projects", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, NumUnseen: true, Size: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*imap.ListData{}
	for _, l := range list {
		got[l.Mailbox] = l
		if l.Delim != '/' {
			t.Errorf("%s: delimiter %q", l.Mailbox, l.Delim)
		}
	}
	for name, attr := range map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts,
		"Trash": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive,
		"Work": imap.MailboxAttrHasChildren, "Work/Projects": imap.MailboxAttrHasNoChildren, "INBOX": imap.MailboxAttrHasNoChildren} {
		l := got[name]
		if l == nil || !slices.Contains(l.Attrs, attr) {
			t.Errorf("LIST %s: want %s, got %+v", name, attr, l)
		}
	}
	if st := got["INBOX"].Status; st == nil || *st.NumMessages != 1 || *st.NumUnseen != 1 || *st.Size <= 0 {
		t.Errorf("LIST-STATUS INBOX: %+v", st)
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Prefix != "" || ns.Personal[0].Delim != '/' {
		t.Errorf("NAMESPACE: %+v %v", ns, err)
	}
	// LIST "" "%" must not descend below the first level.
	top, err := c.List("", "%", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range top {
		if strings.Contains(l.Mailbox, "/") {
			t.Errorf("LIST %% returned %s", l.Mailbox)
		}
	}
}

func wantCode(t *testing.T, what string, err error, code imap.ResponseCode) {
	t.Helper()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != code {
		t.Errorf("%s: want NO [%s], got %v", what, code, err)
	}
}

func TestMailboxCommands(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.client(nil)
	if err := c.Create("Lists", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "CREATE existing", c.Create("Lists", nil).Wait(), imap.ResponseCodeAlreadyExists)
	wantCode(t, "DELETE INBOX", c.Delete("INBOX").Wait(), imap.ResponseCodeCannot)
	wantCode(t, "DELETE missing", c.Delete("Nope").Wait(), imap.ResponseCodeNonExistent)
	wantCode(t, "SELECT missing", func() error { _, err := c.Select("Nope", nil).Wait(); return err }(), imap.ResponseCodeNonExistent)
	if err := c.Rename("Lists", "Newsletters", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.view.Mailbox(context.Background(), "Newsletters"); err != nil {
		t.Fatalf("rename not done: %v", err)
	}
	if err := c.Subscribe("Newsletters").Wait(); err != nil {
		t.Fatal(err)
	}
	subs, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(subs, func(l *imap.ListData) bool { return l.Mailbox == "Newsletters" }) {
		t.Error("subscribed mailbox not in LIST (SUBSCRIBED)")
	}
	if err := c.Unsubscribe("Newsletters").Wait(); err != nil {
		t.Fatal(err)
	}
	if info, _ := env.view.Mailbox(context.Background(), "Newsletters"); info.Subscribed {
		t.Error("UNSUBSCRIBE not applied")
	}
	if err := c.Delete("Newsletters").Wait(); err != nil {
		t.Fatal(err)
	}
	env.view.deliver("INBOX", simpleMsg, `\Seen`)
	env.view.deliver("INBOX", simpleMsg)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, Size: true, NumDeleted: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.NumMessages == nil || st.NumUnseen == nil || st.Size == nil || st.NumDeleted == nil {
		t.Fatalf("STATUS items missing: %+v", st)
	}
	if *st.NumMessages != 2 || *st.NumUnseen != 1 || st.UIDNext != 3 || st.UIDValidity == 0 || *st.Size == 0 || *st.NumDeleted != 0 {
		t.Errorf("STATUS: %+v", st)
	}
}

func TestAppendAndHeaderFetchWithoutBody(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.client(nil)
	raw := []byte(strings.ReplaceAll(multipartMsg, "\n", "\r\n"))
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	cmd := c.Append("Drafts", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}, Time: date})
	cmd.Write(raw)
	cmd.Close()
	data, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	info, _ := env.view.Mailbox(context.Background(), "Drafts")
	if data.UID != 1 || data.UIDValidity != info.UIDValidity {
		t.Fatalf("APPENDUID %+v, mailbox %+v", data, info)
	}
	if _, err := c.Select("Drafts", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	env.view.bodyCalls.Store(0)
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "From"}, Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v %d", err, len(msgs))
	}
	if n := env.view.bodyCalls.Load(); n != 0 {
		t.Errorf("header-only FETCH called View.Body %d times", n)
	}
	m := msgs[0]
	if !slices.Contains(m.Flags, imap.FlagDraft) || !m.InternalDate.Equal(date) || m.RFC822Size != int64(len(raw)) {
		t.Errorf("flags/date/size: %v %v %d", m.Flags, m.InternalDate, m.RFC822Size)
	}
	if m.Envelope.Subject != "Quarterly résumé" || m.Envelope.From[0].Mailbox != "carol" || m.Envelope.Cc[0].Name != "Dave" ||
		m.Envelope.MessageID != "q-2@example.test" || len(m.Envelope.InReplyTo) != 1 {
		t.Errorf("envelope: %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 3 || mp.Subtype != "mixed" {
		t.Fatalf("bodystructure: %#v", m.BodyStructure)
	}
	if att := mp.Children[1].(*imap.BodyStructureSinglePart); att.Extended.Disposition == nil || att.Extended.Disposition.Value != "attachment" {
		t.Errorf("attachment disposition: %+v", att.Extended)
	}
	if inner := mp.Children[2].(*imap.BodyStructureSinglePart); inner.MessageRFC822 == nil || inner.MessageRFC822.Envelope.Subject != "Inner message" {
		t.Errorf("message/rfc822 part: %+v", inner)
	}
	hdr := m.FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader})
	if want := raw[:headerEnd(raw)]; !bytes.Equal(hdr, want) {
		t.Errorf("BODY[HEADER] = %q, want %q", hdr, want)
	}
	fields := m.FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "From"}})
	if !bytes.HasPrefix(fields, []byte("From: Carol")) || !bytes.Contains(fields, []byte("Subject:")) || bytes.Contains(fields, []byte("To:")) {
		t.Errorf("BODY[HEADER.FIELDS (Subject From)] = %q", fields)
	}
	// An APPEND with no header at all is refused and stores nothing.
	bad := c.Append("Drafts", 3, nil)
	bad.Write([]byte("x\r\n"))
	bad.Close()
	if _, err := bad.Wait(); err == nil {
		t.Error("APPEND of a message without header accepted")
	}
	wantCode(t, "APPEND to missing", func() error {
		a := c.Append("Nope", int64(len(raw)), nil)
		a.Write(raw)
		a.Close()
		_, err := a.Wait()
		return err
	}(), imap.ResponseCodeTryCreate)
	if info, _ := env.view.Mailbox(context.Background(), "Drafts"); info.Messages != 1 {
		t.Errorf("Drafts has %d messages after bad APPENDs", info.Messages)
	}
}

func collectBody(t *testing.T, c *imapclient.Client, uid imap.UID, opts *imap.FetchOptions) *imapclient.FetchMessageBuffer {
	t.Helper()
	opts.UID = true
	msgs, err := c.Fetch(imap.UIDSetNum(uid), opts).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %v (%d messages)", err, len(msgs))
	}
	return msgs[0]
}
