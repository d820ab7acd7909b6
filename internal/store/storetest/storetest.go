// Package storetest is the conformance suite every store.Store
// implementation runs (bolt and redis), so that both behave identically.
//
// Run checks every operation and its error cases, RunConcurrency checks that
// concurrent writers keep UIDs and the event log consistent, and
// RunBenchmarks measures the hot paths. The suite only relies on the contract
// written in package store; where that contract leaves a choice open (for
// example whether creating an account logs events), the suite does not
// assert either way.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"smessenger/internal/store"
)

// Run runs the conformance suite against fresh stores made by newStore. Each
// subtest gets its own store, which must be empty (ListAccounts is checked);
// newStore must register its own cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"Aliases", testAliases},
		{"DeleteAccount", testDeleteAccount},
		{"UnknownAccount", testUnknownAccount},
		{"PublicKey", testPublicKey},
		{"EnrolTokens", testEnrolTokens},
		{"Devices", testDevices},
		{"Mailboxes", testMailboxes},
		{"RenameMailbox", testRenameMailbox},
		{"DeleteMailbox", testDeleteMailbox},
		{"Subscribe", testSubscribe},
		{"Append", testAppend},
		{"ListAndGet", testListAndGet},
		{"Blobs", testBlobs},
		{"StoreFlags", testStoreFlags},
		{"Expunge", testExpunge},
		{"Copy", testCopy},
		{"Move", testMove},
		{"Quota", testQuota},
		{"Events", testEvents},
		{"WaitEvents", testWaitEvents},
		{"QueueLease", testQueueLease},
		{"QueueLeaseExpiry", testQueueLeaseExpiry},
		{"QueueReschedule", testQueueReschedule},
		{"QueueUpdateLeased", testQueueUpdateLeased},
		{"QueueDeadLetter", testQueueDeadLetter},
		{"QueueDrop", testQueueDrop},
		{"QueueList", testQueueList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// seq gives each test its own unique addresses.
var seq atomic.Int64

func counter() int64 { return seq.Add(1) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newAccount(t testing.TB, s store.Store, quota int64) store.Account {
	t.Helper()
	addr := fmt.Sprintf("user%d-%d@example.org", counter(), time.Now().UnixNano())
	a, err := s.CreateAccount(ctxT(t), addr, quota)
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

func mustIs(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// msg builds a message whose blobs are recognisable by tag.
func msg(tag string, size int64, flags ...string) store.NewMessage {
	return store.NewMessage{
		Flags:        flags,
		InternalDate: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Size:         size,
		HeaderBlob:   []byte("hdr-" + tag),
		BodyBlob:     []byte("body-" + tag + "-" + string(bytes.Repeat([]byte{'x'}, 32))),
	}
}

func appendN(t testing.TB, s store.Store, id store.AccountID, mbox string, n int) []store.MessageMeta {
	t.Helper()
	out := make([]store.MessageMeta, 0, n)
	for i := 0; i < n; i++ {
		m, err := s.Append(ctxT(t), id, mbox, msg(fmt.Sprint(i), 100))
		must(t, "Append", err)
		out = append(out, m)
	}
	return out
}

func getMailbox(t testing.TB, s store.Store, id store.AccountID, name string) store.Mailbox {
	t.Helper()
	mb, err := s.GetMailbox(ctxT(t), id, name)
	must(t, "GetMailbox "+name, err)
	return mb
}

func lastSeq(t testing.TB, s store.Store, id store.AccountID) uint64 {
	t.Helper()
	n, err := s.LastEventSeq(ctxT(t), id)
	must(t, "LastEventSeq", err)
	return n
}

// eventsAfter returns all events after seq and checks their numbering.
func eventsAfter(t testing.TB, s store.Store, id store.AccountID, after uint64) []store.Event {
	t.Helper()
	evs, err := s.EventsSince(ctxT(t), id, after, 100000)
	must(t, "EventsSince", err)
	for i, ev := range evs {
		if ev.Seq != after+uint64(i)+1 {
			t.Fatalf("event %d has Seq %d, want %d", i, ev.Seq, after+uint64(i)+1)
		}
	}
	return evs
}

func uids(ms []store.MessageMeta) []uint32 {
	out := make([]uint32, len(ms))
	for i, m := range ms {
		out[i] = m.UID
	}
	return out
}

func sameFlags(got, want []string) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return slices.Equal(got, want)
}

func checkFlagsNormal(t testing.TB, flags []string) {
	t.Helper()
	if !sort.StringsAreSorted(flags) {
		t.Fatalf("flags %q not sorted", flags)
	}
	for i := 1; i < len(flags); i++ {
		if flags[i] == flags[i-1] {
			t.Fatalf("flags %q not deduplicated", flags)
		}
	}
}
