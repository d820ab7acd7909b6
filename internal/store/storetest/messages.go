package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"smessenger/internal/store"
)

func testAppend(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	mb0 := getMailbox(t, s, a.ID, "INBOX")
	before := lastSeq(t, s, a.ID)

	m1, err := s.Append(ctx, a.ID, "inbox", msg("one", 1234, `\seen`, "$Label", `\Seen`, `\Flagged`))
	must(t, "Append", err)
	if m1.UID != mb0.UIDNext || m1.MailboxID != mb0.ID || m1.ID == 0 || m1.Size != 1234 {
		t.Fatalf("Append = %+v (mailbox was %+v)", m1, mb0)
	}
	if m1.ModSeq <= mb0.HighestModSeq {
		t.Fatalf("modseq %d not above HIGHESTMODSEQ %d", m1.ModSeq, mb0.HighestModSeq)
	}
	if !sameFlags(m1.Flags, []string{"$Label", `\Flagged`, `\Seen`}) {
		t.Fatalf("flags = %q, want normalised", m1.Flags)
	}
	if !m1.InternalDate.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Fatalf("InternalDate = %v", m1.InternalDate)
	}
	if m1.HeaderLen != len("hdr-one") || m1.BodyLen != len(msg("one", 0).BodyBlob) {
		t.Fatalf("blob lengths = %d/%d", m1.HeaderLen, m1.BodyLen)
	}
	mb1 := getMailbox(t, s, a.ID, "INBOX")
	if mb1.UIDNext != m1.UID+1 || mb1.HighestModSeq != m1.ModSeq || mb1.Messages != 1 || mb1.Unseen != 0 || mb1.Size != 1234 {
		t.Fatalf("mailbox after append = %+v", mb1)
	}

	// A zero InternalDate means now.
	start := time.Now().Add(-time.Second)
	nm := msg("two", 10)
	nm.InternalDate = time.Time{}
	m2, err := s.Append(ctx, a.ID, "INBOX", nm)
	must(t, "Append", err)
	if m2.InternalDate.Before(start) || m2.InternalDate.After(time.Now().Add(time.Second)) {
		t.Fatalf("zero InternalDate became %v", m2.InternalDate)
	}
	if m2.UID <= m1.UID || m2.ModSeq <= m1.ModSeq || m2.ID == m1.ID || len(m2.Flags) != 0 {
		t.Fatalf("second append = %+v after %+v", m2, m1)
	}
	mb2 := getMailbox(t, s, a.ID, "INBOX")
	if mb2.Unseen != 1 || mb2.Messages != 2 || mb2.UIDNext != m2.UID+1 || mb2.HighestModSeq != m2.ModSeq {
		t.Fatalf("mailbox after 2nd append = %+v", mb2)
	}
	acc, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if acc.UsedBytes != 1244 {
		t.Fatalf("UsedBytes = %d, want 1244", acc.UsedBytes)
	}

	evs := eventsAfter(t, s, a.ID, before)
	if len(evs) != 2 {
		t.Fatalf("events = %+v", evs)
	}
	ev := evs[0]
	if ev.Kind != store.EventMessageAdded || ev.Mailbox != "INBOX" || ev.MailboxID != mb0.ID || ev.UID != m1.UID ||
		ev.MessageID != m1.ID || ev.ModSeq != m1.ModSeq || !sameFlags(ev.Flags, m1.Flags) || ev.Time.IsZero() {
		t.Fatalf("append event = %+v for %+v", ev, m1)
	}

	// Bad input changes nothing.
	_, err = s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: -1, BodyBlob: []byte("x")})
	mustIs(t, "Append negative size", err, store.ErrInvalid)
	if got := getMailbox(t, s, a.ID, "INBOX"); got.UIDNext != mb2.UIDNext || got.Messages != 2 {
		t.Fatalf("rejected append changed the mailbox: %+v", got)
	}
	if n := lastSeq(t, s, a.ID); n != before+2 {
		t.Fatalf("rejected append logged an event: %d", n)
	}
}

func testListAndGet(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	ms := appendN(t, s, a.ID, "INBOX", 5)
	for i := 1; i < len(ms); i++ {
		if ms[i].UID <= ms[i-1].UID {
			t.Fatalf("UIDs not increasing: %v", uids(ms))
		}
	}
	all, err := s.ListMessages(ctx, a.ID, "INBOX", 0)
	must(t, "ListMessages", err)
	if !slices.Equal(uids(all), uids(ms)) {
		t.Fatalf("ListMessages UIDs = %v, want %v", uids(all), uids(ms))
	}
	for i := range all {
		if all[i].ID != ms[i].ID || all[i].ModSeq != ms[i].ModSeq || all[i].Size != ms[i].Size || all[i].MailboxID != ms[i].MailboxID {
			t.Fatalf("ListMessages[%d] = %+v, want %+v", i, all[i], ms[i])
		}
	}
	tail, err := s.ListMessages(ctx, a.ID, "INBOX", ms[3].UID)
	must(t, "ListMessages since", err)
	if !slices.Equal(uids(tail), uids(ms[3:])) {
		t.Fatalf("ListMessages since = %v", uids(tail))
	}
	none, err := s.ListMessages(ctx, a.ID, "INBOX", ms[4].UID+1)
	must(t, "ListMessages past end", err)
	if len(none) != 0 {
		t.Fatalf("ListMessages past end = %v", uids(none))
	}
	empty, err := s.ListMessages(ctx, a.ID, "Sent", 0)
	must(t, "ListMessages empty", err)
	if len(empty) != 0 {
		t.Fatalf("Sent not empty: %v", uids(empty))
	}

	g, err := s.GetMessage(ctx, a.ID, "INBOX", ms[2].UID)
	must(t, "GetMessage", err)
	if g.ID != ms[2].ID || g.UID != ms[2].UID || g.BodyLen != ms[2].BodyLen {
		t.Fatalf("GetMessage = %+v", g)
	}
	_, err = s.GetMessage(ctx, a.ID, "INBOX", 9999)
	mustIs(t, "GetMessage unknown uid", err, store.ErrMessageNotFound)
	_, err = s.GetMessage(ctx, a.ID, "Sent", ms[0].UID)
	mustIs(t, "GetMessage wrong mailbox", err, store.ErrMessageNotFound)
}

func testBlobs(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	b := newAccount(t, s, 0)
	big := bytes.Repeat([]byte{0xA5, 0x00, 0xFF}, 40000)
	nm := store.NewMessage{Size: int64(len(big)), HeaderBlob: []byte{0, 1, 2}, BodyBlob: big}
	m1, err := s.Append(ctx, a.ID, "INBOX", nm)
	must(t, "Append", err)
	m2, err := s.Append(ctx, a.ID, "Drafts", msg("second", 5))
	must(t, "Append", err)

	hs, err := s.HeaderBlobs(ctx, a.ID, []store.MessageID{m2.ID, m1.ID})
	must(t, "HeaderBlobs", err)
	if len(hs) != 2 || string(hs[0]) != "hdr-second" || !bytes.Equal(hs[1], []byte{0, 1, 2}) {
		t.Fatalf("HeaderBlobs = %q", hs)
	}
	body, err := s.BodyBlob(ctx, a.ID, m1.ID)
	must(t, "BodyBlob", err)
	if !bytes.Equal(body, big) {
		t.Fatalf("BodyBlob differs (%d bytes)", len(body))
	}
	_, err = s.HeaderBlobs(ctx, a.ID, []store.MessageID{m1.ID, 999999})
	mustIs(t, "HeaderBlobs missing", err, store.ErrMessageNotFound)
	_, err = s.BodyBlob(ctx, a.ID, 999999)
	mustIs(t, "BodyBlob missing", err, store.ErrMessageNotFound)
	// Message ids are per account: b cannot read a's message.
	if _, err := s.BodyBlob(ctx, b.ID, m1.ID); err == nil {
		t.Fatal("BodyBlob of another account's message succeeded")
	}
	hs, err = s.HeaderBlobs(ctx, a.ID, nil)
	must(t, "HeaderBlobs empty", err)
	if len(hs) != 0 {
		t.Fatalf("HeaderBlobs(nil) = %q", hs)
	}
}

func testStoreFlags(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	ms := appendN(t, s, a.ID, "INBOX", 3)
	mb0 := getMailbox(t, s, a.ID, "INBOX")
	before := lastSeq(t, s, a.ID)

	changed, err := s.StoreFlags(ctx, a.ID, "INBOX", []uint32{ms[0].UID, ms[2].UID, 9999}, store.FlagsAdd, []string{`\seen`, "work"})
	must(t, "StoreFlags add", err)
	if len(changed) != 2 || changed[0].UID != ms[0].UID || changed[1].UID != ms[2].UID {
		t.Fatalf("StoreFlags add changed %+v", changed)
	}
	for _, c := range changed {
		checkFlagsNormal(t, c.Flags)
		if !sameFlags(c.Flags, []string{`\Seen`, "work"}) || c.ModSeq <= mb0.HighestModSeq {
			t.Fatalf("after add: %+v", c)
		}
	}
	if changed[1].ModSeq <= changed[0].ModSeq {
		t.Fatal("modseq not increasing per change")
	}
	mb1 := getMailbox(t, s, a.ID, "INBOX")
	if mb1.Unseen != 1 || mb1.HighestModSeq != changed[1].ModSeq {
		t.Fatalf("mailbox after StoreFlags = %+v", mb1)
	}
	evs := eventsAfter(t, s, a.ID, before)
	if len(evs) != 2 {
		t.Fatalf("flag events = %+v", evs)
	}
	for i, ev := range evs {
		if ev.Kind != store.EventFlagsChanged || ev.UID != changed[i].UID || ev.MessageID != changed[i].ID ||
			ev.ModSeq != changed[i].ModSeq || !sameFlags(ev.Flags, changed[i].Flags) || ev.Mailbox != "INBOX" {
			t.Fatalf("flag event %d = %+v", i, ev)
		}
	}

	// Adding flags that are already there changes nothing.
	same, err := s.StoreFlags(ctx, a.ID, "INBOX", []uint32{ms[0].UID}, store.FlagsAdd, []string{`\Seen`})
	must(t, "StoreFlags no-op", err)
	if len(same) != 0 || lastSeq(t, s, a.ID) != before+2 || getMailbox(t, s, a.ID, "INBOX").HighestModSeq != mb1.HighestModSeq {
		t.Fatalf("no-op StoreFlags changed something: %+v", same)
	}

	rm, err := s.StoreFlags(ctx, a.ID, "INBOX", []uint32{ms[0].UID, ms[1].UID}, store.FlagsRemove, []string{"work"})
	must(t, "StoreFlags remove", err)
	if len(rm) != 1 || rm[0].UID != ms[0].UID || !sameFlags(rm[0].Flags, []string{`\Seen`}) {
		t.Fatalf("StoreFlags remove = %+v", rm)
	}
	set, err := s.StoreFlags(ctx, a.ID, "INBOX", []uint32{ms[0].UID, ms[1].UID, ms[2].UID}, store.FlagsSet, []string{`\Answered`, `\Answered`})
	must(t, "StoreFlags set", err)
	if len(set) != 3 {
		t.Fatalf("StoreFlags set = %+v", set)
	}
	g, err := s.GetMessage(ctx, a.ID, "INBOX", ms[1].UID)
	must(t, "GetMessage", err)
	if !sameFlags(g.Flags, []string{`\Answered`}) || g.ModSeq != set[1].ModSeq {
		t.Fatalf("stored flags = %+v", g)
	}
	if mb := getMailbox(t, s, a.ID, "INBOX"); mb.Unseen != 3 {
		t.Fatalf("Unseen = %d, want 3", mb.Unseen)
	}
	_, err = s.StoreFlags(ctx, a.ID, "INBOX", []uint32{ms[0].UID}, store.FlagOp(42), []string{"x"})
	mustIs(t, "StoreFlags bad op", err, store.ErrInvalid)
}

func testExpunge(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	ms := appendN(t, s, a.ID, "INBOX", 5)
	_, err := s.StoreFlags(ctx, a.ID, "INBOX", []uint32{ms[1].UID, ms[3].UID}, store.FlagsAdd, []string{`\Deleted`})
	must(t, "StoreFlags", err)
	mb0 := getMailbox(t, s, a.ID, "INBOX")
	before := lastSeq(t, s, a.ID)

	gone, err := s.Expunge(ctx, a.ID, "INBOX", nil)
	must(t, "Expunge deleted", err)
	if !slices.Equal(gone, []uint32{ms[1].UID, ms[3].UID}) {
		t.Fatalf("Expunge(nil) = %v", gone)
	}
	evs := eventsAfter(t, s, a.ID, before)
	if len(evs) != 2 {
		t.Fatalf("expunge events = %+v", evs)
	}
	for i, ev := range evs {
		want := ms[[]int{1, 3}[i]]
		if ev.Kind != store.EventExpunged || ev.UID != want.UID || ev.MessageID != want.ID || ev.MailboxID != mb0.ID || ev.ModSeq <= mb0.HighestModSeq {
			t.Fatalf("expunge event %d = %+v", i, ev)
		}
	}
	mb1 := getMailbox(t, s, a.ID, "INBOX")
	if mb1.Messages != 3 || mb1.UIDNext != mb0.UIDNext || mb1.HighestModSeq <= mb0.HighestModSeq || mb1.Size != 300 {
		t.Fatalf("mailbox after expunge = %+v", mb1)
	}

	// Explicit UIDs, unsorted, with unknown ones skipped.
	gone, err = s.Expunge(ctx, a.ID, "INBOX", []uint32{ms[4].UID, 9999, ms[0].UID, ms[1].UID})
	must(t, "Expunge uids", err)
	if !slices.Equal(gone, []uint32{ms[0].UID, ms[4].UID}) {
		t.Fatalf("Expunge(uids) = %v", gone)
	}
	left, err := s.ListMessages(ctx, a.ID, "INBOX", 0)
	must(t, "ListMessages", err)
	if !slices.Equal(uids(left), []uint32{ms[2].UID}) {
		t.Fatalf("left after expunge = %v", uids(left))
	}
	_, err = s.BodyBlob(ctx, a.ID, ms[0].ID)
	mustIs(t, "BodyBlob expunged", err, store.ErrMessageNotFound)
	acc, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if acc.UsedBytes != 100 {
		t.Fatalf("UsedBytes = %d, want 100", acc.UsedBytes)
	}
	// Expunging nothing is fine and logs nothing.
	seq := lastSeq(t, s, a.ID)
	gone, err = s.Expunge(ctx, a.ID, "INBOX", nil)
	must(t, "Expunge none", err)
	if len(gone) != 0 || lastSeq(t, s, a.ID) != seq {
		t.Fatalf("empty expunge = %v", gone)
	}
	// A new append never reuses an expunged UID.
	m, err := s.Append(ctx, a.ID, "INBOX", msg("new", 1))
	must(t, "Append", err)
	if m.UID <= ms[4].UID {
		t.Fatalf("UID %d reused after expunge", m.UID)
	}
}

func testCopy(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	ms := appendN(t, s, a.ID, "INBOX", 3)
	_, err := s.StoreFlags(ctx, a.ID, "INBOX", []uint32{ms[2].UID}, store.FlagsAdd, []string{`\Flagged`})
	must(t, "StoreFlags", err)
	dst0 := getMailbox(t, s, a.ID, "Archive")
	before := lastSeq(t, s, a.ID)

	pairs, err := s.Copy(ctx, a.ID, "INBOX", []uint32{ms[2].UID, 9999, ms[0].UID}, "Archive")
	must(t, "Copy", err)
	if len(pairs) != 2 || pairs[0].Src != ms[0].UID || pairs[1].Src != ms[2].UID || pairs[0].Dst != dst0.UIDNext || pairs[1].Dst <= pairs[0].Dst {
		t.Fatalf("Copy pairs = %+v", pairs)
	}
	copies, err := s.ListMessages(ctx, a.ID, "Archive", 0)
	must(t, "ListMessages", err)
	if len(copies) != 2 {
		t.Fatalf("copies = %+v", copies)
	}
	for i, c := range copies {
		src := ms[[]int{0, 2}[i]]
		if c.ID == src.ID || c.UID != pairs[i].Dst || c.Size != src.Size || c.MailboxID != dst0.ID {
			t.Fatalf("copy %d = %+v of %+v", i, c, src)
		}
		b1, err := s.BodyBlob(ctx, a.ID, c.ID)
		must(t, "BodyBlob copy", err)
		b2, err := s.BodyBlob(ctx, a.ID, src.ID)
		must(t, "BodyBlob src", err)
		if !bytes.Equal(b1, b2) {
			t.Fatal("copy has a different body blob")
		}
	}
	if !sameFlags(copies[1].Flags, []string{`\Flagged`}) {
		t.Fatalf("copy lost flags: %q", copies[1].Flags)
	}
	evs := eventsAfter(t, s, a.ID, before)
	if len(evs) != 2 || evs[0].Kind != store.EventMessageAdded || evs[0].Mailbox != "Archive" || evs[0].MessageID != copies[0].ID || evs[1].UID != copies[1].UID {
		t.Fatalf("copy events = %+v", evs)
	}
	acc, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if acc.UsedBytes != 500 {
		t.Fatalf("UsedBytes after copy = %d, want 500", acc.UsedBytes)
	}
	// Expunging the original keeps the copy's blobs readable.
	_, err = s.Expunge(ctx, a.ID, "INBOX", []uint32{ms[0].UID})
	must(t, "Expunge", err)
	hs, err := s.HeaderBlobs(ctx, a.ID, []store.MessageID{copies[0].ID})
	must(t, "HeaderBlobs of copy after expunge", err)
	if string(hs[0]) != "hdr-0" {
		t.Fatalf("copy header = %q", hs[0])
	}
	// Copy into the same mailbox works too.
	pairs, err = s.Copy(ctx, a.ID, "INBOX", []uint32{ms[1].UID}, "inbox")
	must(t, "Copy to self", err)
	if len(pairs) != 1 || pairs[0].Dst <= ms[2].UID {
		t.Fatalf("Copy to self = %+v", pairs)
	}
}

func testMove(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	ms := appendN(t, s, a.ID, "INBOX", 3)
	src0 := getMailbox(t, s, a.ID, "INBOX")
	dst0 := getMailbox(t, s, a.ID, "Trash")
	acc0, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	before := lastSeq(t, s, a.ID)

	pairs, err := s.Move(ctx, a.ID, "INBOX", []uint32{ms[2].UID, ms[0].UID, 9999}, "Trash")
	must(t, "Move", err)
	if len(pairs) != 2 || pairs[0].Src != ms[0].UID || pairs[1].Src != ms[2].UID || pairs[0].Dst != dst0.UIDNext || pairs[1].Dst != dst0.UIDNext+1 {
		t.Fatalf("Move pairs = %+v", pairs)
	}
	moved, err := s.ListMessages(ctx, a.ID, "Trash", 0)
	must(t, "ListMessages", err)
	if len(moved) != 2 || moved[0].ID != ms[0].ID || moved[1].ID != ms[2].ID || moved[0].UID != pairs[0].Dst || moved[0].MailboxID != dst0.ID {
		t.Fatalf("moved = %+v", moved)
	}
	left, err := s.ListMessages(ctx, a.ID, "INBOX", 0)
	must(t, "ListMessages", err)
	if !slices.Equal(uids(left), []uint32{ms[1].UID}) {
		t.Fatalf("left in INBOX = %v", uids(left))
	}
	body, err := s.BodyBlob(ctx, a.ID, ms[0].ID)
	must(t, "BodyBlob moved", err)
	if !bytes.Equal(body, msg("0", 0).BodyBlob) {
		t.Fatalf("moved body = %q", body)
	}
	src1 := getMailbox(t, s, a.ID, "INBOX")
	dst1 := getMailbox(t, s, a.ID, "Trash")
	if src1.Messages != 1 || dst1.Messages != 2 || src1.HighestModSeq <= src0.HighestModSeq || dst1.UIDNext != dst0.UIDNext+2 {
		t.Fatalf("after move: src %+v dst %+v", src1, dst1)
	}
	acc1, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if acc1.UsedBytes != acc0.UsedBytes {
		t.Fatalf("move changed UsedBytes %d → %d", acc0.UsedBytes, acc1.UsedBytes)
	}

	evs := eventsAfter(t, s, a.ID, before)
	added, expunged := map[store.MessageID]store.Event{}, map[store.MessageID]store.Event{}
	for _, ev := range evs {
		switch ev.Kind {
		case store.EventMessageAdded:
			added[ev.MessageID] = ev
		case store.EventExpunged:
			expunged[ev.MessageID] = ev
		default:
			t.Fatalf("unexpected move event %+v", ev)
		}
	}
	if len(evs) != 4 {
		t.Fatalf("move events = %+v", evs)
	}
	for i, id := range []store.MessageID{ms[0].ID, ms[2].ID} {
		ad, ex := added[id], expunged[id]
		if ad.Mailbox != "Trash" || ad.MailboxID != dst0.ID || ad.UID != pairs[i].Dst {
			t.Fatalf("added event for %d = %+v", id, ad)
		}
		if ex.Mailbox != "INBOX" || ex.MailboxID != src0.ID || ex.UID != pairs[i].Src {
			t.Fatalf("expunged event for %d = %+v", id, ex)
		}
	}
}

func testQuota(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 250)
	_, err := s.Append(ctx, a.ID, "INBOX", msg("a", 100))
	must(t, "Append", err)
	_, err = s.Append(ctx, a.ID, "INBOX", msg("b", 100))
	must(t, "Append", err)
	mb := getMailbox(t, s, a.ID, "INBOX")
	seq := lastSeq(t, s, a.ID)

	_, err = s.Append(ctx, a.ID, "INBOX", msg("c", 100))
	mustIs(t, "Append over quota", err, store.ErrQuotaExceeded)
	_, err = s.Copy(ctx, a.ID, "INBOX", []uint32{mb.UIDNext - 1}, "Archive")
	mustIs(t, "Copy over quota", err, store.ErrQuotaExceeded)
	if got := getMailbox(t, s, a.ID, "INBOX"); got.UIDNext != mb.UIDNext || got.Messages != 2 {
		t.Fatalf("refused append changed the mailbox: %+v", got)
	}
	if got := getMailbox(t, s, a.ID, "Archive"); got.Messages != 0 {
		t.Fatalf("refused copy changed the target: %+v", got)
	}
	if lastSeq(t, s, a.ID) != seq {
		t.Fatal("refused append logged an event")
	}
	acc, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if acc.UsedBytes != 200 {
		t.Fatalf("UsedBytes = %d", acc.UsedBytes)
	}
	// Moving does not count twice; a smaller message still fits.
	pairs, err := s.Move(ctx, a.ID, "INBOX", []uint32{mb.UIDNext - 1}, "Archive")
	must(t, "Move within quota", err)
	_, err = s.Append(ctx, a.ID, "INBOX", msg("d", 50))
	must(t, "Append exactly to quota", err)
	// Expunge frees space; SetQuota lifts the limit.
	_, err = s.Expunge(ctx, a.ID, "Archive", []uint32{pairs[0].Dst})
	must(t, "Expunge", err)
	_, err = s.Append(ctx, a.ID, "INBOX", msg("e", 100))
	must(t, "Append after expunge", err)
	must(t, "SetQuota", s.SetQuota(ctx, a.ID, 0))
	_, err = s.Append(ctx, a.ID, "INBOX", msg("f", 1<<30))
	must(t, "Append unlimited", err)
}
