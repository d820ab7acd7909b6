package bolt

import (
	"bytes"
	"testing"
	"time"

	"smessenger/internal/store"
)

// FuzzDecodeRecords feeds arbitrary bytes to every record decoder: each must
// return a value or an error, never panic, and whatever decodes must
// re-encode to the same bytes (the layout is deterministic).
func FuzzDecodeRecords(f *testing.F) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	a := &account{Account: store.Account{Primary: "a@example.org", Addresses: []string{"a@example.org", "b@example.org"},
		Created: now, QuotaBytes: 10, UsedBytes: 3}, nextMailbox: 7, nextMessage: 9, nextUIDValidity: 1700000000, lastEvent: 4}
	mb := store.Mailbox{Name: "INBOX/Sub", SpecialUse: store.SpecialSent, UIDValidity: 5, UIDNext: 6, HighestModSeq: 7, Subscribed: true, Messages: 2, Unseen: 1, Size: 99}
	msg := &message{MessageMeta: store.MessageMeta{ID: 3, Flags: []string{`\Seen`, "x"}, InternalDate: now, Size: 12, ModSeq: 4, HeaderLen: 5, BodyLen: 6}, blob: 3}
	ev := store.Event{Kind: store.EventMailboxRenamed, Time: now, Mailbox: "new", OldName: "old", MailboxID: 2, Flags: []string{"f"}, ModSeq: 8}
	dev := store.Device{NoiseKey: bytes.Repeat([]byte{1}, 32), Name: "phone", Created: now, Revoked: true}
	q := &store.QueueEntry{Account: "acct", From: "a@example.org", Recipients: []store.QueueRecipient{{Address: "r@x.example", Done: true, LastError: "550"}},
		Payload: []byte("payload"), Created: now, Attempts: 2, NextAttempt: now, LeaseOwner: "w", LeaseUntil: now}
	for _, seed := range [][]byte{encodeAccount(a), encodeMailbox(&mb), encodeMessage(msg), encodeEvent(&ev), encodeDevice(&dev),
		encodeRef("acct", "d1", now), encodeQueueEntry(q), {}, {recordV1}, {2, 0, 0}, {recordV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		if got, err := decodeAccount("id", rec); err == nil && !bytes.Equal(encodeAccount(got), rec) {
			t.Errorf("account does not round-trip")
		}
		if got, err := decodeMailbox(1, rec); err == nil && !bytes.Equal(encodeMailbox(&got), rec) {
			t.Errorf("mailbox does not round-trip")
		}
		if got, err := decodeMessage(1, 1, rec); err == nil && !bytes.Equal(encodeMessage(&got), rec) {
			t.Errorf("message does not round-trip")
		}
		if got, err := decodeEvent(1, rec); err == nil && !bytes.Equal(encodeEvent(&got), rec) {
			t.Errorf("event does not round-trip")
		}
		if got, err := decodeDevice("id", "d1", rec); err == nil && !bytes.Equal(encodeDevice(&got), rec) {
			t.Errorf("device does not round-trip")
		}
		if acct, s, tm, err := decodeRef(rec); err == nil && !bytes.Equal(encodeRef(acct, s, tm), rec) {
			t.Errorf("ref does not round-trip")
		}
		if got, err := decodeQueueEntry("id", rec, true); err == nil && !bytes.Equal(encodeQueueEntry(&got), rec) {
			t.Errorf("queue entry does not round-trip")
		}
		_, _ = decodeQueueEntry("id", rec, false)
		_, _, _, _ = decodeLocation(rec)
	})
}
