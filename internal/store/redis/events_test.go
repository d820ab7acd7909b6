package redis

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"smessenger/internal/store"
	"smessenger/internal/testutil/redistest"
)

// waitAcross checks that WaitEvents on one Store (one process) wakes up for
// an Append made through another Store, and that many waiters share it.
func waitAcross(t *testing.T, url string) {
	ctx := ctxT(t)
	writer, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	reader, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	a, err := writer.CreateAccount(ctx, "wait@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	last, err := reader.LastEventSeq(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 20
	var wg sync.WaitGroup
	got := make(chan uint64, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := reader.WaitEvents(ctx, a.ID, last)
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the waiters block
	start := time.Now()
	if _, err := writer.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 1, HeaderBlob: []byte("h"), BodyBlob: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(got)
	for n := range got {
		if n != last+1 {
			t.Fatalf("WaitEvents returned %d, want %d", n, last+1)
		}
	}
	// Woken by the publication, not by the periodic re-check.
	if d := time.Since(start); d >= recheckEvery {
		t.Fatalf("waiters woke after %v", d)
	}
	// An already-passed seq returns at once; a cancelled wait returns ctx.Err().
	if n, err := reader.WaitEvents(ctx, a.ID, 0); err != nil || n != last+1 {
		t.Fatalf("WaitEvents(0) = %d, %v", n, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := reader.WaitEvents(short, a.ID, last+1); err != context.DeadlineExceeded {
		t.Fatalf("WaitEvents with expiring ctx: %v", err)
	}
	if n := len(reader.hub.waiters); n != 0 {
		t.Fatalf("%d waiter sets left registered", n)
	}
}

func TestWaitEventsAcrossStores(t *testing.T) {
	waitAcross(t, redistest.Start(t))
}

func TestWaitEventsAcrossStoresCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	waitAcross(t, strings.Join(redistest.StartCluster(t, 3), ","))
}

// TestRejectedInputChangesNothing: bad names and flags are refused before
// any script runs, and the account's event log does not move.
func TestRejectedInputChangesNothing(t *testing.T) {
	ctx := ctxT(t)
	s, err := Open(ctx, redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateAccount(ctx, "bad@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.LastEventSeq(ctx, a.ID)
	nm := store.NewMessage{Size: 1, HeaderBlob: []byte("h"), BodyBlob: []byte("b")}
	for name, err := range map[string]error{
		"tab in mailbox":  func() error { _, err := s.CreateMailbox(ctx, a.ID, "a\tb", ""); return err }(),
		"bad special-use": func() error { _, err := s.CreateMailbox(ctx, a.ID, "x", `\Bogus`); return err }(),
		"space in flag":   func() error { nm.Flags = []string{"a b"}; _, err := s.Append(ctx, a.ID, "INBOX", nm); return err }(),
		"negative size":   func() error { _, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: -1}); return err }(),
		"bad address":     s.AddAlias(ctx, a.ID, "no-at-sign"),
		"bad flag op":     func() error { _, err := s.StoreFlags(ctx, a.ID, "INBOX", []uint32{1}, 9, nil); return err }(),
		"bad account id":  func() error { _, err := s.GetAccount(ctx, "{a:x}"); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if after, _ := s.LastEventSeq(ctx, a.ID); after != before {
		t.Fatalf("event log moved from %d to %d", before, after)
	}
	if mbs, _ := s.ListMailboxes(ctx, a.ID); len(mbs) != len(store.DefaultMailboxes) {
		t.Fatalf("mailboxes changed: %+v", mbs)
	}
}
