package storetest

import (
	"bytes"
	"sort"
	"testing"
	"time"

	"smessenger/internal/store"
)

// qtime is a wall-clock time rounded to milliseconds, the precision every
// backend keeps.
func qtime() time.Time { return time.Now().Truncate(time.Millisecond) }

func enqueue(t *testing.T, s store.Store, acc store.AccountID, due time.Time, rcpts ...string) string {
	t.Helper()
	e := store.QueueEntry{
		Account:     acc,
		From:        "sender@example.org",
		Payload:     []byte("payload for " + rcpts[0]),
		NextAttempt: due,
		Expires:     qtime().Add(72 * time.Hour),
	}
	for _, r := range rcpts {
		e.Recipients = append(e.Recipients, store.QueueRecipient{Address: r})
	}
	id, err := s.Enqueue(ctxT(t), e)
	must(t, "Enqueue", err)
	if id == "" {
		t.Fatal("Enqueue returned an empty id")
	}
	return id
}

func testQueueLease(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := qtime()
	late := enqueue(t, s, a.ID, now.Add(-time.Minute), "late@remote.example")
	early := enqueue(t, s, a.ID, now.Add(-2*time.Minute), "early@remote.example", "second@remote.example")
	future := enqueue(t, s, a.ID, now.Add(time.Hour), "future@remote.example")
	if late == early || early == future {
		t.Fatal("Enqueue reused an id")
	}

	e1, err := s.Lease(ctx, "worker-a", now, time.Minute)
	must(t, "Lease", err)
	if e1.ID != early || e1.LeaseOwner != "worker-a" || !e1.LeaseUntil.Equal(now.Add(time.Minute)) {
		t.Fatalf("first lease = %+v, want %s", e1, early)
	}
	if e1.Account != a.ID || e1.From != "sender@example.org" || len(e1.Recipients) != 2 || e1.Recipients[1].Address != "second@remote.example" ||
		!bytes.Equal(e1.Payload, []byte("payload for early@remote.example")) || e1.Attempts != 0 || e1.Created.IsZero() || e1.Dead {
		t.Fatalf("leased entry = %+v", e1)
	}
	// Two owners never hold the same entry.
	e2, err := s.Lease(ctx, "worker-b", now, time.Minute)
	must(t, "Lease second", err)
	if e2.ID != late || e2.LeaseOwner != "worker-b" {
		t.Fatalf("second lease = %+v, want %s", e2, late)
	}
	_, err = s.Lease(ctx, "worker-c", now, time.Minute)
	mustIs(t, "Lease with nothing due", err, store.ErrQueueEmpty)

	// Only the owner may act on a lease.
	mustIs(t, "Complete by non-owner", s.Complete(ctx, early, "worker-b"), store.ErrLeaseLost)
	mustIs(t, "Reschedule by non-owner", s.Reschedule(ctx, early, "worker-b", now, "x"), store.ErrLeaseLost)
	mustIs(t, "DeadLetter by non-owner", s.DeadLetter(ctx, early, "worker-b", "x"), store.ErrLeaseLost)
	mustIs(t, "Complete unleased", s.Complete(ctx, future, "worker-a"), store.ErrLeaseLost)
	must(t, "Complete", s.Complete(ctx, early, "worker-a"))
	_, err = s.GetQueueEntry(ctx, early)
	mustIs(t, "GetQueueEntry completed", err, store.ErrNotFound)
	mustIs(t, "Complete twice", s.Complete(ctx, early, "worker-a"), store.ErrLeaseLost)

	// With time, worker-b's lease runs out (due again since now+1m) and
	// the future entry becomes due (at now+1h): earliest first.
	e3, err := s.Lease(ctx, "worker-c", now.Add(2*time.Hour), time.Minute)
	must(t, "Lease expired", err)
	if e3.ID != late || e3.LeaseOwner != "worker-c" {
		t.Fatalf("lease at +2h = %+v, want %s", e3, late)
	}
	e3, err = s.Lease(ctx, "worker-c", now.Add(2*time.Hour), time.Minute)
	must(t, "Lease future", err)
	if e3.ID != future {
		t.Fatalf("second lease at +2h = %s, want %s", e3.ID, future)
	}
	got, err := s.GetQueueEntry(ctx, future)
	must(t, "GetQueueEntry", err)
	if got.LeaseOwner != "worker-c" || string(got.Payload) != "payload for future@remote.example" {
		t.Fatalf("GetQueueEntry = %+v", got)
	}
}

func testQueueLeaseExpiry(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := qtime()
	id := enqueue(t, s, a.ID, now, "x@remote.example")
	e, err := s.Lease(ctx, "old", now, time.Minute)
	must(t, "Lease", err)
	_, err = s.Lease(ctx, "new", now.Add(30*time.Second), time.Minute)
	mustIs(t, "Lease while held", err, store.ErrQueueEmpty)

	// After the lease ran out another worker takes it, and the old owner's
	// writes are refused.
	e2, err := s.Lease(ctx, "new", now.Add(2*time.Minute), time.Hour)
	must(t, "Lease after expiry", err)
	if e2.ID != id || e2.LeaseOwner != "new" {
		t.Fatalf("re-lease = %+v", e2)
	}
	e.Recipients[0].Done = true
	mustIs(t, "UpdateLeased by old owner", s.UpdateLeased(ctx, e, "old"), store.ErrLeaseLost)
	mustIs(t, "Complete by old owner", s.Complete(ctx, id, "old"), store.ErrLeaseLost)
	got, err := s.GetQueueEntry(ctx, id)
	must(t, "GetQueueEntry", err)
	if got.Recipients[0].Done || got.LeaseOwner != "new" {
		t.Fatalf("lost lease wrote anyway: %+v", got)
	}
	must(t, "Complete by new owner", s.Complete(ctx, id, "new"))
}

func testQueueReschedule(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := qtime()
	id := enqueue(t, s, a.ID, now, "x@remote.example")
	_, err := s.Lease(ctx, "w", now, time.Minute)
	must(t, "Lease", err)
	next := now.Add(10 * time.Minute)
	must(t, "Reschedule", s.Reschedule(ctx, id, "w", next, "451 try later"))
	got, err := s.GetQueueEntry(ctx, id)
	must(t, "GetQueueEntry", err)
	if got.Attempts != 1 || !got.NextAttempt.Equal(next) || got.LastError != "451 try later" || got.LeaseOwner != "" {
		t.Fatalf("after Reschedule = %+v", got)
	}
	_, err = s.Lease(ctx, "w", now.Add(5*time.Minute), time.Minute)
	mustIs(t, "Lease before next attempt", err, store.ErrQueueEmpty)
	e, err := s.Lease(ctx, "w2", next, time.Minute)
	must(t, "Lease at next attempt", err)
	if e.ID != id || e.Attempts != 1 {
		t.Fatalf("lease after reschedule = %+v", e)
	}
	must(t, "Reschedule again", s.Reschedule(ctx, id, "w2", next.Add(time.Minute), "452"))
	got, err = s.GetQueueEntry(ctx, id)
	must(t, "GetQueueEntry", err)
	if got.Attempts != 2 || got.LastError != "452" {
		t.Fatalf("after 2nd Reschedule = %+v", got)
	}
	mustIs(t, "Reschedule unleased", s.Reschedule(ctx, id, "w2", next, "x"), store.ErrLeaseLost)
}

func testQueueUpdateLeased(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := qtime()
	id := enqueue(t, s, a.ID, now, "one@remote.example", "two@remote.example", "three@remote.example")
	e, err := s.Lease(ctx, "w", now, time.Hour)
	must(t, "Lease", err)
	e.Recipients[0].Done = true
	e.Recipients[2].Done, e.Recipients[2].Failed, e.Recipients[2].LastError = true, true, "550 no such user"
	e.Payload = []byte("must not be replaced")
	must(t, "UpdateLeased", s.UpdateLeased(ctx, e, "w"))
	got, err := s.GetQueueEntry(ctx, id)
	must(t, "GetQueueEntry", err)
	r := got.Recipients
	if len(r) != 3 || !r[0].Done || r[0].Failed || r[1].Done || !r[2].Done || !r[2].Failed || r[2].LastError != "550 no such user" {
		t.Fatalf("recipients after UpdateLeased = %+v", r)
	}
	if got.LeaseOwner != "w" || string(got.Payload) != "payload for one@remote.example" {
		t.Fatalf("UpdateLeased changed more than recipients: %+v", got)
	}
	// The state survives a reschedule and the next lease.
	must(t, "Reschedule", s.Reschedule(ctx, id, "w", now, "421"))
	e2, err := s.Lease(ctx, "w2", now, time.Hour)
	must(t, "Lease", err)
	if !e2.Recipients[0].Done || e2.Recipients[1].Done {
		t.Fatalf("recipient state lost: %+v", e2.Recipients)
	}
	mustIs(t, "UpdateLeased by non-owner", s.UpdateLeased(ctx, e2, "w"), store.ErrLeaseLost)
	e2.ID = "no-such-entry"
	mustIs(t, "UpdateLeased unknown", s.UpdateLeased(ctx, e2, "w2"), store.ErrLeaseLost)
}

func testQueueDeadLetter(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := qtime()
	id := enqueue(t, s, a.ID, now, "x@remote.example")
	_, err := s.Lease(ctx, "w", now, time.Minute)
	must(t, "Lease", err)
	must(t, "DeadLetter", s.DeadLetter(ctx, id, "w", "expired after 5 days"))
	got, err := s.GetQueueEntry(ctx, id)
	must(t, "GetQueueEntry dead", err)
	if !got.Dead || got.LastError != "expired after 5 days" || got.LeaseOwner != "" || len(got.Payload) == 0 {
		t.Fatalf("dead entry = %+v", got)
	}
	_, err = s.Lease(ctx, "w", now.Add(24*time.Hour), time.Minute)
	mustIs(t, "Lease dead entry", err, store.ErrQueueEmpty)
	live, err := s.ListQueue(ctx, false)
	must(t, "ListQueue live", err)
	dead, err := s.ListQueue(ctx, true)
	must(t, "ListQueue dead", err)
	if len(live) != 0 || len(dead) != 1 || dead[0].ID != id {
		t.Fatalf("live %+v dead %+v", live, dead)
	}

	// RetryNow revives it, due at once.
	must(t, "RetryNow", s.RetryNow(ctx, id))
	got, err = s.GetQueueEntry(ctx, id)
	must(t, "GetQueueEntry revived", err)
	if got.Dead {
		t.Fatal("RetryNow left the entry dead")
	}
	e, err := s.Lease(ctx, "w", time.Now().Add(time.Second), time.Minute)
	must(t, "Lease revived", err)
	if e.ID != id {
		t.Fatalf("leased %s, want %s", e.ID, id)
	}
	mustIs(t, "RetryNow unknown", s.RetryNow(ctx, "no-such-entry"), store.ErrNotFound)

	// RetryNow of a live entry scheduled far away makes it due now.
	far := enqueue(t, s, a.ID, now.Add(48*time.Hour), "far@remote.example")
	must(t, "RetryNow live", s.RetryNow(ctx, far))
	e, err = s.Lease(ctx, "w", time.Now().Add(time.Second), time.Minute)
	must(t, "Lease after RetryNow", err)
	if e.ID != far {
		t.Fatalf("leased %s, want %s", e.ID, far)
	}
}

func testQueueDrop(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := qtime()
	live := enqueue(t, s, a.ID, now, "a@remote.example")
	dead := enqueue(t, s, a.ID, now, "b@remote.example")
	for i := 0; i < 2; i++ {
		e, err := s.Lease(ctx, "w", now, time.Minute)
		must(t, "Lease", err)
		if e.ID == dead {
			must(t, "DeadLetter", s.DeadLetter(ctx, dead, "w", "bounce"))
		}
	}
	must(t, "DropEntry live", s.DropEntry(ctx, live))
	must(t, "DropEntry dead", s.DropEntry(ctx, dead))
	for _, id := range []string{live, dead} {
		_, err := s.GetQueueEntry(ctx, id)
		mustIs(t, "GetQueueEntry dropped", err, store.ErrNotFound)
	}
	mustIs(t, "DropEntry twice", s.DropEntry(ctx, live), store.ErrNotFound)
	_, err := s.Lease(ctx, "w", now.Add(time.Hour), time.Minute)
	mustIs(t, "Lease after drop", err, store.ErrQueueEmpty)
}

func testQueueList(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := qtime()
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, enqueue(t, s, a.ID, now.Add(time.Duration(12-i)*time.Minute), "r@remote.example"))
	}
	list, err := s.ListQueue(ctx, false)
	must(t, "ListQueue", err)
	if len(list) != len(ids) {
		t.Fatalf("ListQueue has %d entries, want %d", len(list), len(ids))
	}
	if !sort.SliceIsSorted(list, func(i, j int) bool { return list[i].ID < list[j].ID }) {
		t.Fatal("ListQueue not in id order")
	}
	seen := map[string]bool{}
	for _, e := range list {
		seen[e.ID] = true
		if len(e.Payload) != 0 || e.Dead || len(e.Recipients) != 1 || e.Account != a.ID {
			t.Fatalf("ListQueue entry = %+v", e)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("entry %s missing from ListQueue", id)
		}
	}
	_, err = s.GetQueueEntry(ctx, "no-such-entry")
	mustIs(t, "GetQueueEntry unknown", err, store.ErrNotFound)
	dead, err := s.ListQueue(ctx, true)
	must(t, "ListQueue dead", err)
	if len(dead) != 0 {
		t.Fatalf("dead letters = %+v", dead)
	}
}
