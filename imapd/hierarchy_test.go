package imapd

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func listByName(t *testing.T, c *imapclient.Client, pattern string) map[string][]imap.MailboxAttr {
	t.Helper()
	list, err := c.List("", pattern, nil).Collect()
	if err != nil {
		t.Fatalf("LIST %q: %v", pattern, err)
	}
	out := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		if _, dup := out[l.Mailbox]; dup {
			t.Errorf("LIST %q returned %s twice", pattern, l.Mailbox)
		}
		out[l.Mailbox] = l.Attrs
	}
	return out
}

// TestListMissingParents: where only "a/b" exists, LIST shows "a" as
// \Noselect with children, so clients draw the tree; IMAP4rev2 clients also
// get \NonExistent; "a" itself cannot be selected.
func TestListMissingParents(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, name := range []string{"a/b", "x/y/z"} {
		if err := env.view.CreateMailbox(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	c := env.client(nil)
	all := listByName(t, c, "*")
	for _, parent := range []string{"a", "x", "x/y"} {
		attrs, ok := all[parent]
		if !ok || !slices.Contains(attrs, imap.MailboxAttrNoSelect) || !slices.Contains(attrs, imap.MailboxAttrHasChildren) {
			t.Errorf("LIST * %s: %v (listed %v)", parent, attrs, ok)
		}
		if slices.Contains(attrs, imap.MailboxAttrNonExistent) {
			t.Errorf("LIST * %s: \\NonExistent sent to an IMAP4rev1 client", parent)
		}
	}
	for _, leaf := range []string{"a/b", "x/y/z", "INBOX"} {
		if attrs, ok := all[leaf]; !ok || slices.Contains(attrs, imap.MailboxAttrNoSelect) {
			t.Errorf("LIST * %s: %v (listed %v)", leaf, attrs, ok)
		}
	}
	top := listByName(t, c, "%")
	if _, ok := top["a"]; !ok {
		t.Error(`LIST "%" lacks the parent "a"`)
	}
	if _, ok := top["a/b"]; ok {
		t.Error(`LIST "%" descended to "a/b"`)
	}
	if second := listByName(t, c, "x/%"); len(second) != 1 || second["x/y"] == nil {
		t.Errorf(`LIST "x/%%": %v`, second)
	}
	wantCode(t, "SELECT a missing parent", func() error { _, err := c.Select("a", nil).Wait(); return err }(), imap.ResponseCodeNonExistent)
	// Creating the parent turns it into a real mailbox, listed once.
	if err := c.Create("a", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if attrs := listByName(t, c, "*")["a"]; slices.Contains(attrs, imap.MailboxAttrNoSelect) || !slices.Contains(attrs, imap.MailboxAttrHasChildren) {
		t.Errorf("created parent: %v", attrs)
	}

	rev2 := env.client(nil)
	if _, err := rev2.Enable(imap.CapIMAP4rev2).Wait(); err != nil {
		t.Fatal(err)
	}
	if attrs := listByName(t, rev2, "*")["x"]; !slices.Contains(attrs, imap.MailboxAttrNonExistent) {
		t.Errorf("IMAP4rev2 LIST x: %v, want \\NonExistent", attrs)
	}
	// LSUB and LIST (SUBSCRIBED) list subscriptions only.
	subs, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range subs {
		if l.Mailbox == "x" || l.Mailbox == "x/y" {
			t.Errorf("LIST (SUBSCRIBED) returned the missing parent %s", l.Mailbox)
		}
	}
}

// TestRenameOfSelectedMailbox: a session keeps working on its selected
// mailbox when another session renames it, when another device renames it
// (no IMAP involved), and hears of messages delivered under the new name.
func TestRenameOfSelectedMailbox(t *testing.T) {
	env := newTestEnv(t, nil)
	if err := env.view.CreateMailbox(t.Context(), "Projects"); err != nil {
		t.Fatal(err)
	}
	env.view.deliver("Projects", simpleMsg)
	env.view.deliver("Projects", simpleMsg)
	exists := make(chan uint32, 8)
	a := env.client(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	if _, err := a.Select("Projects", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	b := env.client(nil)
	if err := b.Rename("Projects", "Done", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	flag := func(seq uint32, f imap.Flag, mailbox string) {
		t.Helper()
		if err := a.Store(imap.SeqSetNum(seq), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{f}, Silent: true}, nil).Close(); err != nil {
			t.Fatalf("STORE after rename to %s: %v", mailbox, err)
		}
		msgs, err := env.view.Messages(t.Context(), mailbox)
		if err != nil || !hasFlag(msgs[seq-1].Flags, string(f)) {
			t.Fatalf("flag %s not applied in %s: %v %+v", f, mailbox, err, msgs)
		}
	}
	flag(1, imap.FlagFlagged, "Done")
	got := collectBody(t, a, 2, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	if len(got.FindBodySection(&imap.FetchItemBodySection{})) == 0 {
		t.Error("BODY[] empty after rename")
	}
	env.view.deliver("Done", simpleMsg)
	var n uint32
	eventually(t, "EXISTS for a delivery to the renamed mailbox", func() bool {
		a.Noop().Wait()
		select {
		case n = <-exists:
			return true
		default:
			return false
		}
	})
	if n != 3 {
		t.Errorf("EXISTS %d after delivery to the renamed mailbox", n)
	}

	// Another device renames it: no update says so; the next command
	// finds the mailbox by its UIDVALIDITY.
	if err := env.view.RenameMailbox(t.Context(), "Done", "Old/Done"); err != nil {
		t.Fatal(err)
	}
	flag(2, imap.FlagSeen, "Old/Done")
	if uids := uidsInBox(t, a); !slices.Equal(uids, []imap.UID{1, 2, 3}) {
		t.Errorf("after the second rename: %v", uids)
	}
	// Deleted elsewhere: the session is told, not left on a stale name.
	if err := env.view.DeleteMailbox(t.Context(), "Old/Done"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "messages of the deleted mailbox expunged", func() bool {
		a.Noop().Wait()
		return len(uidsInBox(t, a)) == 0
	})
	if err := a.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "watchers released", func() bool { return env.view.watcherCount() == 0 })
}
