package storetest

import (
	"testing"

	"smessenger/internal/store"
)

func testMailboxes(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	before := lastSeq(t, s, a.ID)
	mb, err := s.CreateMailbox(ctx, a.ID, "Work", "")
	must(t, "CreateMailbox", err)
	if mb.Name != "Work" || mb.ID == 0 || mb.UIDValidity == 0 || mb.UIDNext < 1 || mb.Messages != 0 {
		t.Fatalf("CreateMailbox = %+v", mb)
	}
	got := getMailbox(t, s, a.ID, "Work")
	if got.ID != mb.ID || got.UIDValidity != mb.UIDValidity || got.UIDNext != mb.UIDNext {
		t.Fatalf("GetMailbox = %+v, want %+v", got, mb)
	}
	evs := eventsAfter(t, s, a.ID, before)
	if len(evs) != 1 || evs[0].Kind != store.EventMailboxCreated || evs[0].Mailbox != "Work" || evs[0].MailboxID != mb.ID {
		t.Fatalf("events after CreateMailbox = %+v", evs)
	}

	_, err = s.CreateMailbox(ctx, a.ID, "Work", "")
	mustIs(t, "CreateMailbox duplicate", err, store.ErrMailboxExists)
	_, err = s.CreateMailbox(ctx, a.ID, "inbox", "")
	mustIs(t, "CreateMailbox inbox", err, store.ErrMailboxExists)
	_, err = s.CreateMailbox(ctx, a.ID, "", "")
	mustIs(t, "CreateMailbox empty name", err, store.ErrInvalid)
	_, err = s.GetMailbox(ctx, a.ID, "work")
	mustIs(t, "GetMailbox other case", err, store.ErrMailboxNotFound)
	_, err = s.GetMailbox(ctx, a.ID, "Nope")
	mustIs(t, "GetMailbox unknown", err, store.ErrMailboxNotFound)

	inbox := getMailbox(t, s, a.ID, "iNbOx")
	if inbox.Name != "INBOX" {
		t.Fatalf("GetMailbox(iNbOx).Name = %q", inbox.Name)
	}
	child, err := s.CreateMailbox(ctx, a.ID, "inbox/Sub", "")
	must(t, "CreateMailbox inbox/Sub", err)
	if child.Name != "INBOX/Sub" {
		t.Fatalf("child of INBOX named %q", child.Name)
	}
	if child.UIDValidity == mb.UIDValidity || child.ID == mb.ID {
		t.Fatal("two mailboxes share UIDVALIDITY or id")
	}

	list, err := s.ListMailboxes(ctx, a.ID)
	must(t, "ListMailboxes", err)
	names := map[string]bool{}
	for _, m := range list {
		names[m.Name] = true
	}
	if !names["Work"] || !names["INBOX/Sub"] || len(list) != len(store.DefaultMailboxes)+2 {
		t.Fatalf("ListMailboxes = %+v", list)
	}

	// Unknown mailbox errors across operations.
	checks := map[string]error{
		"Append":       func() error { _, err := s.Append(ctx, a.ID, "Nope", msg("x", 1)); return err }(),
		"ListMessages": func() error { _, err := s.ListMessages(ctx, a.ID, "Nope", 1); return err }(),
		"GetMessage":   func() error { _, err := s.GetMessage(ctx, a.ID, "Nope", 1); return err }(),
		"StoreFlags": func() error {
			_, err := s.StoreFlags(ctx, a.ID, "Nope", []uint32{1}, store.FlagsAdd, []string{`\Seen`})
			return err
		}(),
		"Expunge":       func() error { _, err := s.Expunge(ctx, a.ID, "Nope", nil); return err }(),
		"CopySrc":       func() error { _, err := s.Copy(ctx, a.ID, "Nope", []uint32{1}, "INBOX"); return err }(),
		"CopyDst":       func() error { _, err := s.Copy(ctx, a.ID, "INBOX", []uint32{1}, "Nope"); return err }(),
		"MoveDst":       func() error { _, err := s.Move(ctx, a.ID, "INBOX", []uint32{1}, "Nope"); return err }(),
		"RenameMailbox": s.RenameMailbox(ctx, a.ID, "Nope", "Other"),
		"DeleteMailbox": s.DeleteMailbox(ctx, a.ID, "Nope"),
		"SetSubscribed": s.SetSubscribed(ctx, a.ID, "Nope", true),
	}
	for name, err := range checks {
		mustIs(t, name+" unknown mailbox", err, store.ErrMailboxNotFound)
	}
}

func testRenameMailbox(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	parent, err := s.CreateMailbox(ctx, a.ID, "Projects", "")
	must(t, "CreateMailbox", err)
	kid, err := s.CreateMailbox(ctx, a.ID, "Projects/Alpha", "")
	must(t, "CreateMailbox", err)
	grandkid, err := s.CreateMailbox(ctx, a.ID, "Projects/Alpha/Notes", "")
	must(t, "CreateMailbox", err)
	lookalike, err := s.CreateMailbox(ctx, a.ID, "ProjectsOld", "")
	must(t, "CreateMailbox", err)
	msgs := appendN(t, s, a.ID, "Projects/Alpha", 3)
	before := lastSeq(t, s, a.ID)

	must(t, "RenameMailbox", s.RenameMailbox(ctx, a.ID, "Projects", "Archive/2024"))
	for _, c := range []struct {
		name string
		was  store.Mailbox
	}{{"Archive/2024", parent}, {"Archive/2024/Alpha", kid}, {"Archive/2024/Alpha/Notes", grandkid}, {"ProjectsOld", lookalike}} {
		got := getMailbox(t, s, a.ID, c.name)
		if got.ID != c.was.ID || got.UIDValidity != c.was.UIDValidity {
			t.Fatalf("%s after rename = %+v, was %+v", c.name, got, c.was)
		}
	}
	for _, old := range []string{"Projects", "Projects/Alpha", "Projects/Alpha/Notes"} {
		_, err := s.GetMailbox(ctx, a.ID, old)
		mustIs(t, "GetMailbox old name "+old, err, store.ErrMailboxNotFound)
	}
	list, err := s.ListMessages(ctx, a.ID, "Archive/2024/Alpha", 1)
	must(t, "ListMessages renamed", err)
	if len(list) != 3 || list[0].UID != msgs[0].UID || list[2].ID != msgs[2].ID {
		t.Fatalf("messages after rename = %+v", list)
	}
	evs := eventsAfter(t, s, a.ID, before)
	found := false
	for _, ev := range evs {
		if ev.Kind == store.EventMailboxRenamed && ev.MailboxID == parent.ID {
			found = ev.Mailbox == "Archive/2024" && ev.OldName == "Projects"
		}
		if ev.Kind != store.EventMailboxRenamed {
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	if !found {
		t.Fatalf("no rename event for the parent in %+v", evs)
	}

	mustIs(t, "Rename onto existing", s.RenameMailbox(ctx, a.ID, "ProjectsOld", "Sent"), store.ErrMailboxExists)
	mustIs(t, "Rename INBOX", s.RenameMailbox(ctx, a.ID, "inbox", "Old"), store.ErrMailboxProtected)
	mustIs(t, "Rename to INBOX", s.RenameMailbox(ctx, a.ID, "ProjectsOld", "INBOX"), store.ErrMailboxExists)
	mustIs(t, "Rename to empty", s.RenameMailbox(ctx, a.ID, "ProjectsOld", ""), store.ErrInvalid)
	// Refused renames changed nothing.
	if got := getMailbox(t, s, a.ID, "ProjectsOld"); got.ID != lookalike.ID {
		t.Fatalf("ProjectsOld changed: %+v", got)
	}
	// Renaming under a new name keeps working after a refused one.
	must(t, "Rename leaf", s.RenameMailbox(ctx, a.ID, "ProjectsOld", "Older"))
	if got := getMailbox(t, s, a.ID, "Older"); got.ID != lookalike.ID || got.UIDValidity != lookalike.UIDValidity {
		t.Fatalf("Older = %+v", got)
	}
}

func testDeleteMailbox(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	mb, err := s.CreateMailbox(ctx, a.ID, "Tmp", "")
	must(t, "CreateMailbox", err)
	_, err = s.CreateMailbox(ctx, a.ID, "Tmp/Child", "")
	must(t, "CreateMailbox child", err)
	msgs := appendN(t, s, a.ID, "Tmp", 2)
	acc, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if acc.UsedBytes != 200 {
		t.Fatalf("UsedBytes = %d, want 200", acc.UsedBytes)
	}
	before := lastSeq(t, s, a.ID)

	must(t, "DeleteMailbox", s.DeleteMailbox(ctx, a.ID, "Tmp"))
	_, err = s.GetMailbox(ctx, a.ID, "Tmp")
	mustIs(t, "GetMailbox deleted", err, store.ErrMailboxNotFound)
	getMailbox(t, s, a.ID, "Tmp/Child") // children stay
	_, err = s.BodyBlob(ctx, a.ID, msgs[0].ID)
	mustIs(t, "BodyBlob of deleted mailbox", err, store.ErrMessageNotFound)
	acc, err = s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if acc.UsedBytes != 0 {
		t.Fatalf("UsedBytes after delete = %d, want 0", acc.UsedBytes)
	}
	evs := eventsAfter(t, s, a.ID, before)
	if len(evs) == 0 || evs[len(evs)-1].Kind != store.EventMailboxDeleted || evs[len(evs)-1].MailboxID != mb.ID || evs[len(evs)-1].Mailbox != "Tmp" {
		t.Fatalf("events after delete = %+v", evs)
	}

	again, err := s.CreateMailbox(ctx, a.ID, "Tmp", "")
	must(t, "CreateMailbox again", err)
	if again.UIDValidity == mb.UIDValidity || again.ID == mb.ID {
		t.Fatalf("recreated mailbox reuses UIDVALIDITY or id: %+v vs %+v", again, mb)
	}
	if again.Messages != 0 {
		t.Fatalf("recreated mailbox has messages: %+v", again)
	}
	mustIs(t, "Delete INBOX", s.DeleteMailbox(ctx, a.ID, "inbox"), store.ErrMailboxProtected)
	getMailbox(t, s, a.ID, "INBOX")
}

func testSubscribe(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	_, err := s.CreateMailbox(ctx, a.ID, "News", "")
	must(t, "CreateMailbox", err)
	before := lastSeq(t, s, a.ID)
	must(t, "SetSubscribed", s.SetSubscribed(ctx, a.ID, "News", true))
	if !getMailbox(t, s, a.ID, "News").Subscribed {
		t.Fatal("not subscribed")
	}
	must(t, "SetSubscribed false", s.SetSubscribed(ctx, a.ID, "News", false))
	if getMailbox(t, s, a.ID, "News").Subscribed {
		t.Fatal("still subscribed")
	}
	evs := eventsAfter(t, s, a.ID, before)
	if len(evs) != 2 || evs[0].Kind != store.EventSubscribed || !evs[0].Subscribed || evs[1].Subscribed || evs[1].Mailbox != "News" {
		t.Fatalf("subscribe events = %+v", evs)
	}
}
