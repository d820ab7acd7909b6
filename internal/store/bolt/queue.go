package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// The live queue is indexed in bucketQueueDue by big-endian due time + id,
// where an entry is due at its NextAttempt, or at its LeaseUntil while it is
// leased. The first index key is therefore the next entry to lease, and an
// expired lease makes the entry due again without any sweeper.

func dueTime(e *store.QueueEntry) time.Time {
	if e.LeaseOwner != "" {
		return e.LeaseUntil
	}
	return e.NextAttempt
}

// timeKey maps a time to 8 bytes that sort in time order; times before
// 1970 all become 0, which only matters in that they are due.
func timeKey(t time.Time) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return u64key(uint64(n))
}

func dueKey(e *store.QueueEntry) []byte { return append(timeKey(dueTime(e)), e.ID...) }

// loadLive returns a live entry or ErrNotFound.
func loadLive(tx *bbolt.Tx, id string) (*store.QueueEntry, error) {
	v := tx.Bucket(bucketQueue).Get([]byte(id))
	if id == "" || v == nil {
		return nil, store.ErrNotFound
	}
	e, err := decodeQueueEntry(id, v, true)
	return &e, err
}

// saveLive writes a live entry and moves its index key from old (if any).
func saveLive(tx *bbolt.Tx, e *store.QueueEntry, oldKey []byte) error {
	due := tx.Bucket(bucketQueueDue)
	if oldKey != nil {
		if err := due.Delete(oldKey); err != nil {
			return err
		}
	}
	if err := due.Put(dueKey(e), nil); err != nil {
		return err
	}
	return tx.Bucket(bucketQueue).Put([]byte(e.ID), encodeQueueEntry(e))
}

// deleteLive removes a live entry and its index key.
func deleteLive(tx *bbolt.Tx, e *store.QueueEntry) error {
	if err := tx.Bucket(bucketQueueDue).Delete(dueKey(e)); err != nil {
		return err
	}
	return tx.Bucket(bucketQueue).Delete([]byte(e.ID))
}

// Enqueue adds an outbound entry and returns its id.
func (s *Store) Enqueue(ctx context.Context, e store.QueueEntry) (string, error) {
	if len(e.Recipients) == 0 {
		return "", wrap("enqueue", store.ErrInvalid)
	}
	now := time.Now().UTC()
	e.Created = now
	if e.NextAttempt.IsZero() {
		e.NextAttempt = now
	}
	e.Dead, e.LeaseOwner, e.LeaseUntil = false, "", time.Time{}
	var id string
	err := s.update(ctx, "enqueue", func(tx *bbolt.Tx) error {
		seq, err := tx.Bucket(bucketQueue).NextSequence()
		if err != nil {
			return err
		}
		// Fixed-width hex keeps id order equal to enqueue order.
		id = fmt.Sprintf("%016x", seq)
		entry := e
		entry.ID = id
		return saveLive(tx, &entry, nil)
	})
	return id, err
}

// Lease hands the earliest due entry to owner until now+ttl.
func (s *Store) Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (store.QueueEntry, error) {
	if owner == "" || ttl <= 0 {
		return store.QueueEntry{}, wrap("lease", store.ErrInvalid)
	}
	var out store.QueueEntry
	err := s.update(ctx, "lease", func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketQueueDue).Cursor().First()
		if len(k) < 8 || bytes.Compare(k[:8], timeKey(now)) > 0 {
			return store.ErrQueueEmpty
		}
		oldKey := bytes.Clone(k)
		e, err := loadLive(tx, string(k[8:]))
		if err != nil {
			return err
		}
		e.LeaseOwner, e.LeaseUntil = owner, now.Add(ttl).UTC()
		out = *e
		return saveLive(tx, e, oldKey)
	})
	return out, err
}

// leased loads a live entry held by owner, or returns ErrLeaseLost. A lease
// that ran out but was not taken by anyone is still the owner's.
func leased(tx *bbolt.Tx, id, owner string) (*store.QueueEntry, error) {
	e, err := loadLive(tx, id)
	if err != nil || owner == "" || e.LeaseOwner != owner {
		return nil, store.ErrLeaseLost
	}
	return e, nil
}

// UpdateLeased saves the recipients' state of a leased entry.
func (s *Store) UpdateLeased(ctx context.Context, e store.QueueEntry, owner string) error {
	return s.update(ctx, "update leased", func(tx *bbolt.Tx) error {
		cur, err := leased(tx, e.ID, owner)
		if err != nil {
			return err
		}
		if len(e.Recipients) != len(cur.Recipients) {
			return store.ErrInvalid
		}
		cur.Recipients = e.Recipients
		return tx.Bucket(bucketQueue).Put([]byte(cur.ID), encodeQueueEntry(cur))
	})
}

// Complete removes a leased entry.
func (s *Store) Complete(ctx context.Context, entryID, owner string) error {
	return s.update(ctx, "complete", func(tx *bbolt.Tx) error {
		e, err := leased(tx, entryID, owner)
		if err != nil {
			return err
		}
		return deleteLive(tx, e)
	})
}

// Reschedule releases the lease and sets the next attempt.
func (s *Store) Reschedule(ctx context.Context, entryID, owner string, next time.Time, lastErr string) error {
	return s.update(ctx, "reschedule", func(tx *bbolt.Tx) error {
		e, err := leased(tx, entryID, owner)
		if err != nil {
			return err
		}
		oldKey := dueKey(e)
		e.Attempts++
		e.NextAttempt, e.LastError = next.UTC(), lastErr
		e.LeaseOwner, e.LeaseUntil = "", time.Time{}
		return saveLive(tx, e, oldKey)
	})
}

// DeadLetter moves a leased entry to the dead-letter list.
func (s *Store) DeadLetter(ctx context.Context, entryID, owner string, reason string) error {
	return s.update(ctx, "dead letter", func(tx *bbolt.Tx) error {
		e, err := leased(tx, entryID, owner)
		if err != nil {
			return err
		}
		if err := deleteLive(tx, e); err != nil {
			return err
		}
		e.Dead, e.LastError = true, reason
		e.LeaseOwner, e.LeaseUntil = "", time.Time{}
		return tx.Bucket(bucketQueueDead).Put([]byte(e.ID), encodeQueueEntry(e))
	})
}

// ListQueue returns live or dead entries without payloads, in id order.
func (s *Store) ListQueue(ctx context.Context, dead bool) ([]store.QueueEntry, error) {
	name := bucketQueue
	if dead {
		name = bucketQueueDead
	}
	var out []store.QueueEntry
	err := s.view("list queue", func(tx *bbolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, v []byte) error {
			e, err := decodeQueueEntry(string(k), v, false)
			out = append(out, e)
			return err
		})
	})
	return out, err
}

// GetQueueEntry returns one live or dead entry with its payload.
func (s *Store) GetQueueEntry(ctx context.Context, entryID string) (store.QueueEntry, error) {
	var out store.QueueEntry
	err := s.view("get queue entry", func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketQueue, bucketQueueDead} {
			if v := tx.Bucket(name).Get([]byte(entryID)); v != nil && entryID != "" {
				var err error
				out, err = decodeQueueEntry(entryID, v, true)
				return err
			}
		}
		return store.ErrNotFound
	})
	return out, err
}

// RetryNow makes a live or dead entry due now. A leased entry keeps its
// lease, so its worker is not raced by a second one.
func (s *Store) RetryNow(ctx context.Context, entryID string) error {
	now := time.Now().UTC()
	return s.update(ctx, "retry now", func(tx *bbolt.Tx) error {
		dead := tx.Bucket(bucketQueueDead)
		if v := dead.Get([]byte(entryID)); v != nil && entryID != "" {
			e, err := decodeQueueEntry(entryID, v, true)
			if err != nil {
				return err
			}
			if err := dead.Delete([]byte(entryID)); err != nil {
				return err
			}
			e.Dead, e.NextAttempt = false, now
			return saveLive(tx, &e, nil)
		}
		e, err := loadLive(tx, entryID)
		if err != nil {
			return err
		}
		oldKey := dueKey(e)
		e.NextAttempt = now
		return saveLive(tx, e, oldKey)
	})
}

// DropEntry deletes a live or dead entry.
func (s *Store) DropEntry(ctx context.Context, entryID string) error {
	return s.update(ctx, "drop entry", func(tx *bbolt.Tx) error {
		dead := tx.Bucket(bucketQueueDead)
		if entryID != "" && dead.Get([]byte(entryID)) != nil {
			return dead.Delete([]byte(entryID))
		}
		e, err := loadLive(tx, entryID)
		if err != nil {
			return err
		}
		return deleteLive(tx, e)
	})
}

// deleteQueueOf drops every live and dead entry of an account.
func deleteQueueOf(tx *bbolt.Tx, acct store.AccountID) error {
	var live []*store.QueueEntry
	var dead [][]byte
	err := tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
		e, err := decodeQueueEntry(string(k), v, false)
		if err == nil && e.Account == acct {
			live = append(live, &e)
		}
		return err
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketQueueDead).ForEach(func(k, v []byte) error {
		e, err := decodeQueueEntry(string(k), v, false)
		if err == nil && e.Account == acct {
			dead = append(dead, []byte(e.ID))
		}
		return err
	})
	for _, e := range live {
		if err == nil {
			err = deleteLive(tx, e)
		}
	}
	for _, k := range dead {
		if err == nil {
			err = tx.Bucket(bucketQueueDead).Delete(k)
		}
	}
	return err
}
