package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"smessenger/internal/store"
)

// Queue keys, all tagged {q} so each queue script runs on one node.
const (
	qDue  = "{q}:due"
	qDead = "{q}:dead"
	qSeq  = "{q}:seq"
)

// queueMeta is the part of an entry that never changes after Enqueue.
type queueMeta struct {
	Account string    `json:"a"`
	From    string    `json:"f"`
	Created time.Time `json:"c"`
	Expires time.Time `json:"x"`
}

// micros is a queue score: exact in a float64 for any date this side of
// year 2255. up rounds due times up so an entry is never handed out early.
func micros(t time.Time, up bool) int64 {
	us := t.UnixNano() / 1000
	if up && t.UnixNano()%1000 != 0 {
		us++
	}
	return us
}

// Enqueue stores an entry and makes it due at NextAttempt (zero: now).
func (s *Store) Enqueue(ctx context.Context, e store.QueueEntry) (string, error) {
	if len(e.Recipients) == 0 {
		return "", invalid("recipient count", 0)
	}
	now := time.Now()
	next := e.NextAttempt
	if next.IsZero() {
		next = now
	}
	created := e.Created
	if created.IsZero() {
		created = now
	}
	meta, err := json.Marshal(queueMeta{Account: string(e.Account), From: e.From, Created: created, Expires: e.Expires})
	if err != nil {
		return "", fmt.Errorf("redis: enqueue: %w", err)
	}
	rcpts, err := json.Marshal(e.Recipients)
	if err != nil {
		return "", fmt.Errorf("redis: enqueue: %w", err)
	}
	v, err := s.queue(ctx, "enqueue", micros(next, true), meta, rcpts, e.Payload, nanos(next))
	if err != nil {
		return "", err
	}
	id, _ := v.(string)
	return id, nil
}

// Lease hands out the entry with the lowest score <= now (due, or with an
// expired lease) and moves its score to the lease expiry, in one script.
func (s *Store) Lease(ctx context.Context, owner string, now time.Time, ttl time.Duration) (store.QueueEntry, error) {
	if owner == "" || ttl <= 0 {
		return store.QueueEntry{}, invalid("lease", owner)
	}
	until := now.Add(ttl)
	v, err := s.queue(ctx, "lease", micros(now, false), micros(until, true), owner, nanos(until))
	if err != nil {
		return store.QueueEntry{}, err
	}
	arr, _ := v.([]any)
	if len(arr) != 2 {
		return store.QueueEntry{}, fmt.Errorf("redis: lease: short reply")
	}
	id, _ := arr[0].(string)
	return decodeEntry(id, pairs(strs(arr[1])), true)
}

func pairs(f []string) map[string]string {
	m := make(map[string]string, len(f)/2)
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m
}

// decodeEntry builds an entry from its hash fields.
func decodeEntry(id string, h map[string]string, payload bool) (store.QueueEntry, error) {
	var m queueMeta
	if err := json.Unmarshal([]byte(h["meta"]), &m); err != nil {
		return store.QueueEntry{}, fmt.Errorf("redis: corrupt queue entry %s: %w", id, err)
	}
	e := store.QueueEntry{
		ID: id, Account: store.AccountID(m.Account), From: m.From, Created: m.Created, Expires: m.Expires,
		Attempts: int(num(h["attempts"])), NextAttempt: parseNanos(h["next"]), LastError: h["lasterr"],
		Dead: h["dead"] == "1", LeaseOwner: h["owner"], LeaseUntil: parseNanos(h["until"]),
	}
	if err := json.Unmarshal([]byte(h["rcpts"]), &e.Recipients); err != nil {
		return store.QueueEntry{}, fmt.Errorf("redis: corrupt queue entry %s: %w", id, err)
	}
	if payload {
		e.Payload = []byte(h["payload"])
	}
	return e, nil
}

// UpdateLeased saves the recipients' state if owner still holds the lease.
func (s *Store) UpdateLeased(ctx context.Context, e store.QueueEntry, owner string) error {
	rcpts, err := json.Marshal(e.Recipients)
	if err != nil {
		return fmt.Errorf("redis: update leased: %w", err)
	}
	_, err = s.queue(ctx, "update", e.ID, owner, rcpts)
	return err
}

// Complete removes a leased entry.
func (s *Store) Complete(ctx context.Context, entryID, owner string) error {
	_, err := s.queue(ctx, "complete", entryID, owner)
	return err
}

// Reschedule releases the lease and makes the entry due at next.
func (s *Store) Reschedule(ctx context.Context, entryID, owner string, next time.Time, lastErr string) error {
	_, err := s.queue(ctx, "reschedule", entryID, owner, micros(next, true), nanos(next), lastErr)
	return err
}

// DeadLetter moves a leased entry to the dead-letter list.
func (s *Store) DeadLetter(ctx context.Context, entryID, owner string, reason string) error {
	_, err := s.queue(ctx, "dead", entryID, owner, reason)
	return err
}

// ListQueue returns live or dead entries without payloads, in id order.
func (s *Store) ListQueue(ctx context.Context, dead bool) ([]store.QueueEntry, error) {
	which := "live"
	if dead {
		which = "dead"
	}
	v, err := s.queue(ctx, "list", which)
	if err != nil {
		return nil, err
	}
	f := strs(v)
	names := []string{"meta", "rcpts", "next", "attempts", "lasterr", "dead", "owner", "until"}
	out := []store.QueueEntry{}
	for i := 0; i+len(names) < len(f)+1 && i < len(f); i += len(names) + 1 {
		h := map[string]string{}
		for j, n := range names {
			h[n] = f[i+1+j]
		}
		e, err := decodeEntry(f[i], h, false)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b store.QueueEntry) int { return cmpID(a.ID, b.ID) })
	return out, nil
}

func cmpID(a, b string) int {
	x, _ := strconv.ParseUint(a, 16, 64)
	y, _ := strconv.ParseUint(b, 16, 64)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// GetQueueEntry returns one entry with its payload.
func (s *Store) GetQueueEntry(ctx context.Context, entryID string) (store.QueueEntry, error) {
	v, err := s.queue(ctx, "get", entryID)
	if err != nil {
		return store.QueueEntry{}, err
	}
	return decodeEntry(entryID, pairs(strs(v)), true)
}

// RetryNow makes an entry due now; a dead one becomes live.
func (s *Store) RetryNow(ctx context.Context, entryID string) error {
	now := time.Now()
	_, err := s.queue(ctx, "retry", entryID, micros(now, false), nanos(now))
	return err
}

// DropEntry deletes an entry.
func (s *Store) DropEntry(ctx context.Context, entryID string) error {
	_, err := s.queue(ctx, "drop", entryID)
	return err
}
