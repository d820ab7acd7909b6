package bolt

import (
	"context"
	"math"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// location is the value of bucketLocations: where a message id lives.
func encodeLocation(mailbox uint64, uid uint32, blob uint64) []byte {
	k := make([]byte, 0, 20)
	k = append(k, u64key(mailbox)...)
	k = append(k, u32key(uid)...)
	return append(k, u64key(blob)...)
}

func decodeLocation(v []byte) (mailbox uint64, uid uint32, blob uint64, err error) {
	if len(v) != 20 {
		return 0, 0, 0, store.ErrCorrupt
	}
	return be64(v[:8]), be32(v[8:12]), be64(v[12:]), nil
}

// nextModSeq bumps the mailbox's HIGHESTMODSEQ (RFC 7162 section 3.1.2).
func nextModSeq(m *mailboxRef) uint64 {
	m.HighestModSeq++
	return m.HighestModSeq
}

// putMessage stores a message record in m at its UID and indexes its id.
func putMessage(ab *bbolt.Bucket, m *mailboxRef, msg *message) error {
	m.msgs.FillPercent = 0.95 // UIDs only grow: keep pages nearly full
	if err := m.msgs.Put(u32key(msg.UID), encodeMessage(msg)); err != nil {
		return err
	}
	return ab.Bucket(bucketLocations).Put(u64key(uint64(msg.ID)), encodeLocation(m.ID, msg.UID, msg.blob))
}

// addToMailbox gives msg the next UID and modseq of m, stores it, counts it
// and logs EventMessageAdded. msg.ID and msg.blob must be set.
func addToMailbox(ab *bbolt.Bucket, a *account, m *mailboxRef, msg *message) error {
	if m.UIDNext == math.MaxUint32 {
		return store.ErrInvalid // UID space exhausted; RFC 9051 wants a new UIDVALIDITY
	}
	msg.MailboxID = m.ID
	msg.UID = m.UIDNext
	m.UIDNext++
	msg.ModSeq = nextModSeq(m)
	m.Messages++
	m.Size += msg.Size
	if !store.HasFlag(msg.Flags, store.FlagSeen) {
		m.Unseen++
	}
	if err := putMessage(ab, m, msg); err != nil {
		return err
	}
	return logEvent(ab, a, store.Event{Kind: store.EventMessageAdded, Mailbox: m.Name, MailboxID: m.ID,
		UID: msg.UID, MessageID: msg.ID, Flags: msg.Flags, ModSeq: msg.ModSeq})
}

// removeFromMailbox deletes msg from m, uncounts it and logs EventExpunged.
// The caller decides what happens to its id and blobs.
func removeFromMailbox(ab *bbolt.Bucket, a *account, m *mailboxRef, msg *message) error {
	if err := m.msgs.Delete(u32key(msg.UID)); err != nil {
		return err
	}
	m.Messages--
	m.Size -= msg.Size
	if !store.HasFlag(msg.Flags, store.FlagSeen) {
		m.Unseen--
	}
	return logEvent(ab, a, store.Event{Kind: store.EventExpunged, Mailbox: m.Name, MailboxID: m.ID,
		UID: msg.UID, MessageID: msg.ID, ModSeq: nextModSeq(m)})
}

// Append adds a message with the next UID in one atomic, durable commit.
func (s *Store) Append(ctx context.Context, id store.AccountID, mailbox string, nm store.NewMessage) (store.MessageMeta, error) {
	if nm.Size < 0 {
		return store.MessageMeta{}, wrap("append", store.ErrInvalid)
	}
	flags := store.NormalizeFlags(nm.Flags)
	date := nm.InternalDate.UTC()
	if nm.InternalDate.IsZero() {
		date = time.Now().UTC()
	}
	var out store.MessageMeta
	err := s.changeMailbox(ctx, "append", id, mailbox, func(ab *bbolt.Bucket, a *account, m *mailboxRef) (bool, error) {
		if a.QuotaBytes > 0 && a.UsedBytes+nm.Size > a.QuotaBytes {
			return false, store.ErrQuotaExceeded
		}
		msg := &message{MessageMeta: store.MessageMeta{ID: store.MessageID(a.nextMessage), Flags: flags,
			InternalDate: date, Size: nm.Size, HeaderLen: len(nm.HeaderBlob), BodyLen: len(nm.BodyBlob)}}
		msg.blob = a.nextMessage
		a.nextMessage++
		a.UsedBytes += nm.Size
		if err := putBlobs(ab, msg.blob, nm.HeaderBlob, nm.BodyBlob); err != nil {
			return false, err
		}
		if err := addToMailbox(ab, a, m, msg); err != nil {
			return false, err
		}
		out = msg.MessageMeta
		return true, nil
	})
	return out, err
}

func putBlobs(ab *bbolt.Bucket, blob uint64, header, body []byte) error {
	hb := ab.Bucket(bucketHeaders)
	hb.FillPercent = 0.95 // blob ids only grow
	if err := hb.Put(u64key(blob), header); err != nil {
		return err
	}
	return putBody(ab.Bucket(bucketChunks), blob, body)
}

// refBlob counts one more message using blob. A blob without a count entry
// has exactly one user, so a plain append writes no count.
func refBlob(ab *bbolt.Bucket, blob uint64) error {
	refs := ab.Bucket(bucketBlobRefs)
	key := u64key(blob)
	n := uint64(1)
	if v := refs.Get(key); len(v) == 8 {
		n = be64(v)
	}
	return refs.Put(key, u64key(n+1))
}

// releaseBlob drops one user of blob and deletes it with its last user.
func releaseBlob(ab *bbolt.Bucket, blob uint64) error {
	refs := ab.Bucket(bucketBlobRefs)
	key := u64key(blob)
	if v := refs.Get(key); len(v) == 8 {
		if n := be64(v); n > 2 {
			return refs.Put(key, u64key(n-1))
		}
		return refs.Delete(key)
	}
	if err := ab.Bucket(bucketHeaders).Delete(key); err != nil {
		return err
	}
	return deleteBody(ab, blob)
}

// ListMessages returns the metadata of messages with UID >= sinceUID.
func (s *Store) ListMessages(ctx context.Context, id store.AccountID, mailbox string, sinceUID uint32) ([]store.MessageMeta, error) {
	var out []store.MessageMeta
	err := s.view("list messages", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		m, err := findMailbox(ab, mailbox)
		if err != nil {
			return err
		}
		// A bridge lists from the UID an event named, so most calls want
		// the last few messages: size for what can be past sinceUID, not
		// for the whole mailbox.
		want := m.Messages
		if sinceUID > 1 && m.UIDNext > sinceUID {
			want = min(want, m.UIDNext-sinceUID)
		}
		out = make([]store.MessageMeta, 0, want)
		c := m.msgs.Cursor()
		for k, v := c.Seek(u32key(sinceUID)); k != nil; k, v = c.Next() {
			msg, err := decodeMessage(m.ID, be32(k), v)
			if err != nil {
				return err
			}
			out = append(out, msg.MessageMeta)
		}
		return nil
	})
	return out, err
}

// GetMessage returns one message's metadata.
func (s *Store) GetMessage(ctx context.Context, id store.AccountID, mailbox string, uid uint32) (store.MessageMeta, error) {
	var out store.MessageMeta
	err := s.view("get message", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		m, err := findMailbox(ab, mailbox)
		if err != nil {
			return err
		}
		v := m.msgs.Get(u32key(uid))
		if v == nil {
			return store.ErrMessageNotFound
		}
		msg, err := decodeMessage(m.ID, uid, v)
		out = msg.MessageMeta
		return err
	})
	return out, err
}

// blobID returns the blob of a message.
func blobID(ab *bbolt.Bucket, msg store.MessageID) (uint64, error) {
	loc := ab.Bucket(bucketLocations).Get(u64key(uint64(msg)))
	if loc == nil {
		return 0, store.ErrMessageNotFound
	}
	_, _, blob, err := decodeLocation(loc)
	return blob, err
}

// headerOf returns a copy of a message's header blob.
func headerOf(ab *bbolt.Bucket, msg store.MessageID) ([]byte, error) {
	blob, err := blobID(ab, msg)
	if err != nil {
		return nil, err
	}
	// An empty blob may read back as nil; both mean "no bytes".
	return slices.Clone(ab.Bucket(bucketHeaders).Get(u64key(blob))), nil
}

// HeaderBlobs returns the header blobs of msgs, in order.
func (s *Store) HeaderBlobs(ctx context.Context, id store.AccountID, msgs []store.MessageID) ([][]byte, error) {
	out := make([][]byte, 0, len(msgs))
	err := s.view("header blobs", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			b, err := headerOf(ab, m)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BodyBlob returns a message's body blob.
func (s *Store) BodyBlob(ctx context.Context, id store.AccountID, msg store.MessageID) ([]byte, error) {
	var out []byte
	err := s.view("body blob", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		blob, err := blobID(ab, msg)
		if err != nil {
			return err
		}
		out = getBody(ab, blob)
		return nil
	})
	return out, err
}
