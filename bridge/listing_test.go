package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"smessenger/internal/store"
)

// TestMessageListAndSummaries: MessageList is Messages without summaries;
// Summaries answers a batch of UIDs in the order asked, nil for a UID the
// mailbox lacks, from the cache when the LRU is too small to hold them, and
// an unknown mailbox is store.ErrMailboxNotFound.
func TestMessageListAndSummaries(t *testing.T) {
	path := filepath.Join(t.TempDir(), cacheName)
	key := bytes.Repeat([]byte{8}, 32)
	fillCache(t, path, key, []string{"INBOX", "Archive"}, 400)
	a := cacheAccount(t, path, key, OpenConfig{SummaryMemory: 16 << 10})
	defer a.cache.close()
	ctx := context.Background()
	full, err := a.Messages(ctx, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	lite, err := a.MessageList(ctx, "Archive")
	if err != nil || len(lite) != len(full) || len(lite) != 200 {
		t.Fatalf("MessageList: %d of %d, %v", len(lite), len(full), err)
	}
	for i := range lite {
		f, l := full[i], lite[i]
		if l.Summary != nil || l.UID != f.UID || !slices.Equal(l.Flags, f.Flags) || !l.InternalDate.Equal(f.InternalDate) || l.Size != f.Size {
			t.Fatalf("message %d: %+v vs %+v", i, l, f)
		}
	}
	uids := []uint32{200, 3, 999, 1, 3}
	sums, err := a.Summaries(ctx, "Archive", uids)
	if err != nil || len(sums) != len(uids) {
		t.Fatalf("Summaries: %d, %v", len(sums), err)
	}
	for i, uid := range uids {
		if uid == 999 {
			if sums[i] != nil {
				t.Fatal("summary for a UID the mailbox lacks")
			}
			continue
		}
		// fillCache puts message k (0-based) at UID k/2+1 of mailbox k%2.
		want := fmt.Sprintf("message number %d", 2*(int(uid)-1)+1)
		if sums[i] == nil || sums[i].Envelope.Subject != want {
			t.Fatalf("UID %d: %+v, want %q", uid, sums[i], want)
		}
	}
	if a.sums.used > a.sums.max {
		t.Fatalf("LRU over budget: %d of %d", a.sums.used, a.sums.max)
	}
	if _, err := a.Summaries(ctx, "Nope", uids); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("unknown mailbox: %v", err)
	}
	if _, err := a.MessageList(ctx, "Nope"); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("unknown mailbox: %v", err)
	}
	if sums, err := a.Summaries(ctx, "INBOX", nil); err != nil || len(sums) != 0 {
		t.Fatalf("empty batch: %v %v", sums, err)
	}
}
