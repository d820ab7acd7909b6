package bolt

import (
	"context"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// hub wakes in-process waiters of an account's event log. Each account with
// waiters has a channel that is closed (waking everyone at once) and
// replaced when a commit adds events, so 10,000 idle waiters cost 10,000
// parked goroutines and one channel, not 10,000 timers or polls.
type hub struct {
	mu     sync.Mutex
	chans  map[store.AccountID]chan struct{}
	closed bool
}

func newHub() *hub { return &hub{chans: map[store.AccountID]chan struct{}{}} }

// channel returns the channel that the next notify of id closes.
func (h *hub) channel(id store.AccountID) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.chans[id]
	if !ok {
		ch = make(chan struct{})
		if h.closed {
			close(ch)
			return ch
		}
		h.chans[id] = ch
	}
	return ch
}

// notify wakes the waiters of id. Called after the commit is durable.
func (h *hub) notify(id store.AccountID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.chans[id]; ok {
		close(ch)
		// The next waiter makes a new channel; dropping the entry keeps the
		// map as small as the set of accounts being waited on.
		delete(h.chans, id)
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, ch := range h.chans {
		close(ch)
		delete(h.chans, id)
	}
}

// logEvent appends ev to the account's log and returns its seq. The caller
// saves the account record, which holds the log's last seq.
func logEvent(ab *bbolt.Bucket, a *account, ev store.Event) error {
	a.lastEvent++
	ev.Seq = a.lastEvent
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	b := ab.Bucket(bucketEvents)
	b.FillPercent = 1 // append-only: pack pages full
	return b.Put(u64key(ev.Seq), encodeEvent(&ev))
}

// EventsSince returns up to limit events with Seq > after, in order.
func (s *Store) EventsSince(ctx context.Context, id store.AccountID, after uint64, limit int) ([]store.Event, error) {
	if limit < 0 {
		return nil, wrap("events", store.ErrInvalid)
	}
	var out []store.Event
	err := s.view("events", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		c := ab.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64key(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			ev, err := decodeEvent(be64(k), v)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// LastEventSeq is the Seq of the newest event (0 if none).
func (s *Store) LastEventSeq(ctx context.Context, id store.AccountID) (uint64, error) {
	var seq uint64
	err := s.view("last event", func(tx *bbolt.Tx) error {
		_, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		seq = a.lastEvent
		return nil
	})
	return seq, err
}

// WaitEvents blocks until the account has an event with Seq > after.
func (s *Store) WaitEvents(ctx context.Context, id store.AccountID, after uint64) (uint64, error) {
	for {
		// Take the channel before reading, so a commit between the read
		// and the wait still wakes us.
		ch := s.hub.channel(id)
		seq, err := s.LastEventSeq(ctx, id)
		if err != nil {
			return 0, err
		}
		if seq > after {
			return seq, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
