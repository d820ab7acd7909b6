package imapd

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestSummariesOnDemand: a selected mailbox keeps no summaries. FETCH
// asks the view for them only when an item needs them, in batches of at
// most summaryBatch; SEARCH asks only for header and sent-date criteria;
// results are the same as from a full listing, and a message expunged
// between the listing and the batch is skipped rather than failing.
func TestSummariesOnDemand(t *testing.T) {
	env := newTestEnv(t, nil)
	v := env.view
	const n = 2*summaryBatch + 37
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		raw := fmt.Sprintf("From: Sender %d <s%d@example.test>\r\nSubject: note %d\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nbody %d\r\n", i, i, i, i)
		if _, _, err := v.Append(ctx, "INBOX", []byte(raw), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c := env.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	calls := func() int64 { return v.summaryCalls.Load() }
	all := imap.UIDSet{{Start: 1, Stop: 0}}

	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true}).Collect()
	if err != nil || len(msgs) != n || calls() != 0 {
		t.Fatalf("FETCH without summary items: %d messages, %v, %d Summaries calls", len(msgs), err, calls())
	}
	msgs, err = c.Fetch(all, &imap.FetchOptions{UID: true, Envelope: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}}}).Collect()
	if err != nil || len(msgs) != n {
		t.Fatalf("FETCH ENVELOPE: %d messages, %v", len(msgs), err)
	}
	for i, m := range msgs {
		want := fmt.Sprintf("note %d", i+1)
		hdr := m.FindBodySection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}})
		if m.Envelope == nil || m.Envelope.Subject != want || string(hdr) != "Subject: "+want+"\r\n\r\n" {
			t.Fatalf("message %d: %+v %q", i+1, m.Envelope, hdr)
		}
	}
	if got := calls(); got != 3 || v.maxSummaryBatch.Load() > summaryBatch {
		t.Fatalf("%d Summaries calls, largest batch %d", got, v.maxSummaryBatch.Load())
	}
	if v.bodyCalls.Load() != 0 {
		t.Fatalf("header FETCH read %d bodies", v.bodyCalls.Load())
	}

	before := calls()
	data, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{"body 7"}}, nil).Wait()
	if err != nil || len(data.AllUIDs()) == 0 || calls() != before {
		t.Fatalf("SEARCH TEXT: %v %v, %d Summaries calls", data, err, calls()-before)
	}
	data, err = c.UIDSearch(&imap.SearchCriteria{Not: []imap.SearchCriteria{{
		Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "note 1"}}}}}, nil).Wait()
	// "note 1" matches 1, 10–19, 100–199 and 1000–1037.
	if want := n - 1 - 10 - 100 - 38; err != nil || len(data.AllUIDs()) != want || calls()-before != 3 {
		t.Fatalf("SEARCH NOT SUBJECT: %d hits (want %d), %v, %d Summaries calls", len(data.AllUIDs()), want, err, calls()-before)
	}

	// Another device expunged a message whose update has not arrived yet
	// (the view drops it without telling watchers): the session's FETCH
	// skips it instead of failing.
	v.mu.Lock()
	b := v.boxes["INBOX"]
	b.msgs = slices.DeleteFunc(b.msgs, func(m *memMsg) bool { return m.info.UID == 5 })
	v.mu.Unlock()
	msgs, err = c.Fetch(imap.UIDSetNum(4, 5, 6), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 2 || msgs[0].UID != 4 || msgs[1].UID != 6 {
		t.Fatalf("FETCH across a silent expunge: %v %+v", err, msgs)
	}
}
