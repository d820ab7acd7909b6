package bridge

import (
	"testing"
	"time"

	"smessenger/internal/store"
)

func bareAccount() *Account {
	a := &Account{boxes: map[uint64]*mbox{}, byName: map[string]uint64{}, sums: newSumLRU(DefaultSummaryMemory)}
	a.watch.init()
	a.boxes[1] = &mbox{info: store.Mailbox{ID: 1, Name: "INBOX"}}
	a.byName["INBOX"] = 1
	return a
}

func TestWatchCoalescesAndNeverDrops(t *testing.T) {
	a := bareAccount()
	ch, cancel := a.Watch("inbox")
	// Publish far more than the channel buffer without reading: nothing
	// may block or be lost.
	const n = 1000
	for uid := uint32(1); uid <= n; uid++ {
		a.watch.publish(1, Update{Kind: UpdateAdded, UID: uid})
	}
	for i := 0; i < 50; i++ {
		a.watch.publish(1, Update{Kind: UpdateFlags, UID: 3, Flags: []string{"f" + string(rune('a'+i%26))}})
	}
	a.watch.publish(1, Update{Kind: UpdateExpunged, UID: 2})
	a.watch.publish(2, Update{Kind: UpdateAdded, UID: 5000}) // another mailbox
	var added, flags, expunged int
	var lastFlags []string
	timeout := time.After(10 * time.Second)
	for added < n || expunged < 1 {
		select {
		case u := <-ch:
			if u.Mailbox != "INBOX" {
				t.Fatalf("update names mailbox %q", u.Mailbox)
			}
			switch u.Kind {
			case UpdateAdded:
				if u.UID == 5000 {
					t.Fatal("update of another mailbox delivered")
				}
				added++
			case UpdateFlags:
				flags++
				lastFlags = u.Flags
			case UpdateExpunged:
				expunged++
			}
		case <-timeout:
			t.Fatalf("got %d added, %d expunged", added, expunged)
		}
	}
	if flags == 0 || flags > 50 || len(lastFlags) != 1 || lastFlags[0] != "f"+string(rune('a'+49%26)) {
		t.Fatalf("flag updates %d, last %v", flags, lastFlags)
	}
	cancel()
	cancel() // idempotent
	for range ch {
	}
}
