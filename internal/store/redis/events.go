package redis

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/store"
)

// recheckEvery bounds how long a waiter can miss a notification lost with a
// dropped subscription connection: it then reads LastEventSeq itself.
const recheckEvery = 5 * time.Second

// EventsSince returns up to limit events with Seq > after.
func (s *Store) EventsSince(ctx context.Context, id store.AccountID, after uint64, limit int) ([]store.Event, error) {
	if limit < 0 {
		return nil, invalid("limit", limit)
	}
	if limit == 0 {
		if _, err := s.acct(ctx, "events since", scExists, id); err != nil {
			return nil, err
		}
		return []store.Event{}, nil
	}
	v, err := s.acct(ctx, "events since", scEvents, id, "since", after, limit)
	if err != nil {
		return nil, err
	}
	recs := strs(v)
	out := make([]store.Event, 0, len(recs))
	for _, r := range recs {
		ev, err := decodeEvent(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// LastEventSeq returns the newest event's Seq.
func (s *Store) LastEventSeq(ctx context.Context, id store.AccountID) (uint64, error) {
	v, err := s.acct(ctx, "last event", scEvents, id, "last")
	if err != nil {
		return 0, err
	}
	str, _ := v.(string)
	n, _ := strconv.ParseUint(str, 10, 64)
	return n, nil
}

// WaitEvents registers with the Store's single subscription, then re-reads
// LastEventSeq, so an event committed before the registration is not missed.
func (s *Store) WaitEvents(ctx context.Context, id store.AccountID, after uint64) (uint64, error) {
	if err := s.hub.start(ctx); err != nil {
		return 0, err
	}
	w := s.hub.add(id)
	defer s.hub.remove(id, w)
	tick := time.NewTicker(recheckEvery)
	defer tick.Stop()
	for {
		n, err := s.LastEventSeq(ctx, id)
		if err != nil {
			return 0, err
		}
		if n > after {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-w:
		case <-tick.C:
		}
	}
}

// hub is the Store's one pattern subscription, fanned out in memory to the
// waiters of each account.
type hub struct {
	s *Store

	mu      sync.Mutex
	ps      *goredis.PubSub
	closed  bool
	waiters map[store.AccountID]map[chan struct{}]struct{}
	done    chan struct{}
}

func newHub(s *Store) *hub {
	return &hub{s: s, waiters: map[store.AccountID]map[chan struct{}]struct{}{}, done: make(chan struct{})}
}

// start subscribes on first use and waits for Redis to confirm, so events
// published after start returns are delivered.
func (h *hub) start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return mapErr("wait events", goredis.ErrClosed)
	}
	if h.ps != nil {
		return nil
	}
	ps := h.s.rdb.PSubscribe(ctx, evChannel+"*")
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return mapErr("subscribe", err)
	}
	h.ps = ps
	go h.loop(ps.ChannelWithSubscriptions(goredis.WithChannelSize(1024)))
	return nil
}

// loop delivers notifications. A (re)subscription confirmation wakes every
// waiter, since messages may have been lost while the connection was down.
func (h *hub) loop(ch <-chan any) {
	defer close(h.done)
	for m := range ch {
		switch m := m.(type) {
		case *goredis.Message:
			h.wake(store.AccountID(strings.TrimPrefix(m.Channel, evChannel)))
		case *goredis.Subscription:
			h.wakeAll()
		}
	}
}

func (h *hub) add(id store.AccountID) chan struct{} {
	w := make(chan struct{}, 1)
	h.mu.Lock()
	if h.waiters[id] == nil {
		h.waiters[id] = map[chan struct{}]struct{}{}
	}
	h.waiters[id][w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *hub) remove(id store.AccountID, w chan struct{}) {
	h.mu.Lock()
	delete(h.waiters[id], w)
	if len(h.waiters[id]) == 0 {
		delete(h.waiters, id)
	}
	h.mu.Unlock()
}

func (h *hub) wake(id store.AccountID) {
	h.mu.Lock()
	for w := range h.waiters[id] {
		notify(w)
	}
	h.mu.Unlock()
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	for _, ws := range h.waiters {
		for w := range ws {
			notify(w)
		}
	}
	h.mu.Unlock()
}

// notify never blocks: one pending wake-up is enough, the waiter re-reads.
func notify(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default:
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	ps := h.ps
	h.mu.Unlock()
	h.wakeAll() // waiters re-read, fail on the closed client and return
	if ps != nil {
		ps.Close()
		<-h.done
	}
}
