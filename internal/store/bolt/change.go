package bolt

import (
	"context"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// sortedUIDs returns uids ascending without duplicates, leaving the input.
func sortedUIDs(uids []uint32) []uint32 {
	out := slices.Clone(uids)
	slices.Sort(out)
	return slices.Compact(out)
}

// eachMessage calls fn for every existing message of m among uids, in UID
// order; missing UIDs are skipped. Messages are decoded before fn runs, so
// fn may change the bucket.
func eachMessage(m *mailboxRef, uids []uint32, fn func(msg *message) error) error {
	for _, uid := range sortedUIDs(uids) {
		v := m.msgs.Get(u32key(uid))
		if v == nil {
			continue
		}
		msg, err := decodeMessage(m.ID, uid, v)
		if err != nil {
			return err
		}
		if err := fn(&msg); err != nil {
			return err
		}
	}
	return nil
}

// StoreFlags changes flags of the given UIDs and returns the changed ones.
func (s *Store) StoreFlags(ctx context.Context, id store.AccountID, mailbox string, uids []uint32, op store.FlagOp, flags []string) ([]store.MessageMeta, error) {
	if op != store.FlagsSet && op != store.FlagsAdd && op != store.FlagsRemove {
		return nil, wrap("store flags", store.ErrInvalid)
	}
	var out []store.MessageMeta
	err := s.changeMailbox(ctx, "store flags", id, mailbox, func(ab *bbolt.Bucket, a *account, m *mailboxRef) (bool, error) {
		out = nil // a re-run batch starts afresh
		err := eachMessage(m, uids, func(msg *message) error {
			next, changed, err := store.ApplyFlags(msg.Flags, op, flags)
			if err != nil || !changed {
				return err
			}
			wasSeen, isSeen := store.HasFlag(msg.Flags, store.FlagSeen), store.HasFlag(next, store.FlagSeen)
			if wasSeen && !isSeen {
				m.Unseen++
			} else if !wasSeen && isSeen {
				m.Unseen--
			}
			msg.Flags = next
			msg.ModSeq = nextModSeq(m)
			if err := m.msgs.Put(u32key(msg.UID), encodeMessage(msg)); err != nil {
				return err
			}
			out = append(out, msg.MessageMeta)
			return logEvent(ab, a, store.Event{Kind: store.EventFlagsChanged, Mailbox: m.Name, MailboxID: m.ID,
				UID: msg.UID, MessageID: msg.ID, Flags: msg.Flags, ModSeq: msg.ModSeq})
		})
		return len(out) > 0, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Expunge removes the given UIDs, or every \Deleted message when uids is nil.
func (s *Store) Expunge(ctx context.Context, id store.AccountID, mailbox string, uids []uint32) ([]uint32, error) {
	var out []uint32
	err := s.changeMailbox(ctx, "expunge", id, mailbox, func(ab *bbolt.Bucket, a *account, m *mailboxRef) (bool, error) {
		out = nil
		targets := uids
		if uids == nil {
			var err error
			if targets, err = deletedUIDs(m); err != nil {
				return false, err
			}
		}
		err := eachMessage(m, targets, func(msg *message) error {
			if err := removeFromMailbox(ab, a, m, msg); err != nil {
				return err
			}
			a.UsedBytes -= msg.Size
			out = append(out, msg.UID)
			if err := ab.Bucket(bucketLocations).Delete(u64key(uint64(msg.ID))); err != nil {
				return err
			}
			return releaseBlob(ab, msg.blob)
		})
		return len(out) > 0, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// changeMailbox runs fn on one mailbox of an account in one commit. When fn
// reports a change, the mailbox and account records are saved and waiters
// on the account's events are woken after the commit; when it reports none,
// nothing is written.
func (s *Store) changeMailbox(ctx context.Context, op string, id store.AccountID, mailbox string,
	fn func(ab *bbolt.Bucket, a *account, m *mailboxRef) (changed bool, err error)) error {
	changed := false
	err := s.update(ctx, op, func(tx *bbolt.Tx) error {
		changed = false // a re-run batch starts afresh
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		m, err := findMailbox(ab, mailbox)
		if err != nil {
			return err
		}
		if changed, err = fn(ab, a, m); err != nil || !changed {
			return err
		}
		if err := putMailbox(ab, &m.Mailbox); err != nil {
			return err
		}
		return putAccount(ab, a)
	})
	if err == nil && changed {
		s.hub.notify(id)
	}
	return err
}

// deletedUIDs lists the messages of m flagged \Deleted.
func deletedUIDs(m *mailboxRef) ([]uint32, error) {
	var out []uint32
	err := m.msgs.ForEach(func(k, v []byte) error {
		msg, err := decodeMessage(m.ID, be32(k), v)
		if err == nil && store.HasFlag(msg.Flags, store.FlagDeleted) {
			out = append(out, msg.UID)
		}
		return err
	})
	return out, err
}

// Copy copies messages to dst with new ids, sharing their blobs.
func (s *Store) Copy(ctx context.Context, id store.AccountID, src string, uids []uint32, dst string) ([]store.UIDPair, error) {
	return s.transfer(ctx, "copy", id, src, uids, dst, false)
}

// Move moves messages to dst, keeping their ids (RFC 6851).
func (s *Store) Move(ctx context.Context, id store.AccountID, src string, uids []uint32, dst string) ([]store.UIDPair, error) {
	return s.transfer(ctx, "move", id, src, uids, dst, true)
}

// transfer is Copy and Move. The quota is checked up front for a copy, so a
// refused copy writes nothing; a move does not change the used bytes.
func (s *Store) transfer(ctx context.Context, op string, id store.AccountID, src string, uids []uint32, dst string, move bool) ([]store.UIDPair, error) {
	var out []store.UIDPair
	err := s.update(ctx, op, func(tx *bbolt.Tx) error {
		out = nil
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		from, err := findMailbox(ab, src)
		if err != nil {
			return err
		}
		to := from
		if store.NormalizeMailbox(src) != store.NormalizeMailbox(dst) {
			if to, err = findMailbox(ab, dst); err != nil {
				return err
			}
		}
		var msgs []message
		var total int64
		err = eachMessage(from, uids, func(msg *message) error {
			msgs = append(msgs, *msg)
			total += msg.Size
			return nil
		})
		if err != nil || len(msgs) == 0 {
			return err
		}
		if !move && a.QuotaBytes > 0 && a.UsedBytes+total > a.QuotaBytes {
			return store.ErrQuotaExceeded
		}
		for i := range msgs {
			pair, err := transferOne(ab, a, from, to, &msgs[i], move)
			if err != nil {
				return err
			}
			out = append(out, pair)
		}
		if err := putMailbox(ab, &from.Mailbox); err != nil {
			return err
		}
		if err := putMailbox(ab, &to.Mailbox); err != nil {
			return err
		}
		return putAccount(ab, a)
	})
	if err != nil {
		return nil, err
	}
	if len(out) > 0 {
		s.hub.notify(id)
	}
	return out, nil
}

// transferOne copies or moves one message. A move logs the add in the
// destination before the expunge in the source, so a client following the
// log never sees the message missing from both.
func transferOne(ab *bbolt.Bucket, a *account, from, to *mailboxRef, msg *message, move bool) (store.UIDPair, error) {
	srcUID := msg.UID
	if move {
		// Remove by the old UID first; msg itself keeps its id and blob.
		old := *msg
		n := *msg
		if err := addToMailbox(ab, a, to, &n); err != nil {
			return store.UIDPair{}, err
		}
		if err := removeFromMailbox(ab, a, from, &old); err != nil {
			return store.UIDPair{}, err
		}
		return store.UIDPair{Src: srcUID, Dst: n.UID}, nil
	}
	n := *msg
	n.ID = store.MessageID(a.nextMessage)
	a.nextMessage++
	a.UsedBytes += n.Size
	if err := refBlob(ab, n.blob); err != nil {
		return store.UIDPair{}, err
	}
	if err := addToMailbox(ab, a, to, &n); err != nil {
		return store.UIDPair{}, err
	}
	return store.UIDPair{Src: srcUID, Dst: n.UID}, nil
}
