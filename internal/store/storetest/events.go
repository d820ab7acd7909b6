package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"smessenger/internal/store"
)

func testEvents(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	b := newAccount(t, s, 0)
	start := lastSeq(t, s, a.ID)
	bStart := lastSeq(t, s, b.ID)
	appendN(t, s, a.ID, "INBOX", 7)
	if got := lastSeq(t, s, a.ID); got != start+7 {
		t.Fatalf("LastEventSeq = %d, want %d", got, start+7)
	}
	if got := lastSeq(t, s, b.ID); got != bStart {
		t.Fatalf("other account's log moved: %d → %d", bStart, got)
	}
	all := eventsAfter(t, s, a.ID, 0)
	if uint64(len(all)) != start+7 {
		t.Fatalf("%d events, want %d", len(all), start+7)
	}
	page, err := s.EventsSince(ctx, a.ID, start+2, 3)
	must(t, "EventsSince limit", err)
	if len(page) != 3 || page[0].Seq != start+3 || page[2].Seq != start+5 {
		t.Fatalf("EventsSince page = %+v", page)
	}
	rest, err := s.EventsSince(ctx, a.ID, start+5, 100)
	must(t, "EventsSince rest", err)
	if len(rest) != 2 || rest[1].Seq != start+7 {
		t.Fatalf("EventsSince rest = %+v", rest)
	}
	none, err := s.EventsSince(ctx, a.ID, start+7, 100)
	must(t, "EventsSince end", err)
	if len(none) != 0 {
		t.Fatalf("EventsSince past end = %+v", none)
	}
	var prevUID uint32
	for _, ev := range all[start:] {
		if ev.Kind != store.EventMessageAdded || ev.UID <= prevUID || ev.Time.IsZero() {
			t.Fatalf("event %+v out of order", ev)
		}
		prevUID = ev.UID
	}
	_, err = s.EventsSince(ctx, a.ID, 0, -1)
	mustIs(t, "EventsSince negative limit", err, store.ErrInvalid)
}

func testWaitEvents(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	seq := lastSeq(t, s, a.ID)

	// An event already there returns at once.
	if seq > 0 {
		got, err := s.WaitEvents(ctx, a.ID, seq-1)
		must(t, "WaitEvents past", err)
		if got != seq {
			t.Fatalf("WaitEvents past = %d, want %d", got, seq)
		}
	}

	// A waiter wakes on a new event.
	type res struct {
		seq uint64
		err error
	}
	const waiters = 3
	done := make(chan res, waiters)
	for i := 0; i < waiters; i++ {
		go func() {
			n, err := s.WaitEvents(ctx, a.ID, seq)
			done <- res{n, err}
		}()
	}
	select {
	case r := <-done:
		t.Fatalf("WaitEvents returned before any event: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	_, err := s.Append(ctx, a.ID, "INBOX", msg("wake", 1))
	must(t, "Append", err)
	for i := 0; i < waiters; i++ {
		select {
		case r := <-done:
			if r.err != nil || r.seq != seq+1 {
				t.Fatalf("WaitEvents = %d, %v; want %d", r.seq, r.err, seq+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("WaitEvents did not wake on a new event")
		}
	}

	// It honours ctx.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = s.WaitEvents(short, a.ID, seq+1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEvents with expired ctx = %v", err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, err := s.WaitEvents(cctx, a.ID, seq+1); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	ccancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitEvents after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitEvents ignored cancel")
	}
	// Another account's events do not wake it.
	b := newAccount(t, s, 0)
	short2, cancel2 := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel2()
	appended := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, err := s.Append(ctx, b.ID, "INBOX", msg("other", 1))
		appended <- err
	}()
	_, err = s.WaitEvents(short2, a.ID, seq+1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEvents woke on another account's event: %v", err)
	}
	must(t, "Append to other account", <-appended)
}
