package storetest

import (
	"fmt"
	"sync"
	"testing"

	"smessenger/internal/store"
)

// RunConcurrency checks that concurrent writers to one mailbox keep UIDs
// unique and increasing in commit order and the event log gap-free: 8
// writers append 500 messages each while another goroutine changes flags.
func RunConcurrency(t *testing.T, newStore func(t *testing.T) store.Store) {
	const writers, perWriter = 8, 500
	s := newStore(t)
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	start := lastSeq(t, s, a.ID)

	var (
		mu       sync.Mutex
		appended = map[store.MessageID]uint32{} // message id → UID
		flagged  int                            // changes reported by StoreFlags
		wg       sync.WaitGroup
		errs     = make(chan error, writers+1)
		stop     = make(chan struct{})
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				m, err := s.Append(ctx, a.ID, "INBOX", msg(fmt.Sprintf("w%d-%d", w, i), 64))
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", w, i, err)
					return
				}
				mu.Lock()
				appended[m.ID] = m.UID
				mu.Unlock()
			}
		}(w)
	}
	flagDone := make(chan struct{})
	go func() {
		defer close(flagDone)
		op := store.FlagsAdd
		for n := uint32(1); ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			mb, err := s.GetMailbox(ctx, a.ID, "INBOX")
			if err != nil {
				errs <- err
				return
			}
			lo := mb.UIDNext - 1
			uidset := []uint32{lo, lo - 1, lo - 2, n}
			changed, err := s.StoreFlags(ctx, a.ID, "INBOX", uidset, op, []string{`\Seen`})
			if err != nil {
				errs <- fmt.Errorf("StoreFlags: %w", err)
				return
			}
			mu.Lock()
			flagged += len(changed)
			mu.Unlock()
			if op == store.FlagsAdd {
				op = store.FlagsRemove
			} else {
				op = store.FlagsAdd
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-flagDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	list, err := s.ListMessages(ctx, a.ID, "INBOX", 0)
	must(t, "ListMessages", err)
	if len(list) != writers*perWriter || len(appended) != writers*perWriter {
		t.Fatalf("%d messages listed, %d appended, want %d", len(list), len(appended), writers*perWriter)
	}
	for i, m := range list {
		if i > 0 && m.UID <= list[i-1].UID {
			t.Fatalf("UIDs not unique and increasing at %d: %d after %d", i, m.UID, list[i-1].UID)
		}
		if appended[m.ID] != m.UID {
			t.Fatalf("message %d listed with UID %d, Append said %d", m.ID, m.UID, appended[m.ID])
		}
	}
	mb := getMailbox(t, s, a.ID, "INBOX")
	if mb.UIDNext != list[len(list)-1].UID+1 || int(mb.Messages) != len(list) {
		t.Fatalf("mailbox = %+v", mb)
	}

	evs := eventsAfter(t, s, a.ID, start) // checks numbering: no gap, no duplicate
	var adds, flags int
	var lastUID uint32
	var lastModSeq uint64
	for _, ev := range evs {
		if ev.ModSeq <= lastModSeq {
			t.Fatalf("modseq not increasing in event order at seq %d", ev.Seq)
		}
		lastModSeq = ev.ModSeq
		switch ev.Kind {
		case store.EventMessageAdded:
			adds++
			if ev.UID <= lastUID {
				t.Fatalf("UID %d committed after UID %d (seq %d)", ev.UID, lastUID, ev.Seq)
			}
			lastUID = ev.UID
			if appended[ev.MessageID] != ev.UID {
				t.Fatalf("event %d: message %d UID %d, Append said %d", ev.Seq, ev.MessageID, ev.UID, appended[ev.MessageID])
			}
		case store.EventFlagsChanged:
			flags++
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	if adds != writers*perWriter || flags != flagged {
		t.Fatalf("%d add events (want %d), %d flag events (want %d)", adds, writers*perWriter, flags, flagged)
	}
	if mb.HighestModSeq != lastModSeq {
		t.Fatalf("HIGHESTMODSEQ %d, last event modseq %d", mb.HighestModSeq, lastModSeq)
	}
}
