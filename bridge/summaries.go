package bridge

import (
	"container/list"
	"sync"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// DefaultSummaryMemory is the default budget of the summary LRU.
const DefaultSummaryMemory = 32 << 20

// The index keeps no summaries: a summary (header section, envelope, MIME
// structure, preview — a few KB each) is read from the encrypted cache when
// a listing needs it and kept in a bounded LRU, so memory does not grow
// with the mailbox. With the default budget the summaries of some 10,000
// ordinary messages stay in memory, enough for a client's warm header fetch
// of a large mailbox to be served without touching the disk.

// sumLRU keeps recently used summaries up to an estimated byte budget.
type sumLRU struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front = most recent; values are *sumItem
	items map[store.MessageID]*list.Element
}

type sumItem struct {
	id   store.MessageID
	sum  *pgp.Summary
	cost int64
}

func newSumLRU(max int64) *sumLRU {
	return &sumLRU{max: max, order: list.New(), items: map[store.MessageID]*list.Element{}}
}

// summaryCost estimates the heap a decoded summary holds. Calibrated on
// summaries decoded from the cache (a one-part message with 150 header
// bytes takes about 2.2 KB with its LRU bookkeeping, a
// multipart/alternative one about 3.5 KB): the header twice (the decrypted
// buffer it aliases holds the rest of the encoding too), the preview, a
// fixed part for the envelope's addresses and strings and the LRU's own
// element, and per MIME part its struct and parameter maps.
func summaryCost(s *pgp.Summary) int64 {
	return int64(2*len(s.Header)+len(s.Preview)+1500) + partCost(&s.Structure, 0)
}

func partCost(p *pgp.Part, depth int) int64 {
	n := int64(450 + 64*(len(p.Params)+len(p.DispositionParams)))
	if depth > pgp.MaxDepth {
		return n
	}
	for i := range p.Children {
		n += partCost(&p.Children[i], depth+1)
	}
	if p.Inner != nil {
		n += 600 + partCost(p.Inner, depth+1)
	}
	return n
}

func (l *sumLRU) get(id store.MessageID) *pgp.Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[id]; ok {
		l.order.MoveToFront(el)
		return el.Value.(*sumItem).sum
	}
	return nil
}

// put remembers sum for id, replacing what was there.
func (l *sumLRU) put(id store.MessageID, sum *pgp.Summary) {
	if sum == nil {
		return
	}
	cost := summaryCost(sum)
	if cost > l.max {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[id]; ok {
		it := el.Value.(*sumItem)
		l.used += cost - it.cost
		it.sum, it.cost = sum, cost
		l.order.MoveToFront(el)
	} else {
		l.items[id] = l.order.PushFront(&sumItem{id: id, sum: sum, cost: cost})
		l.used += cost
	}
	for l.used > l.max {
		el := l.order.Back()
		it := el.Value.(*sumItem)
		l.order.Remove(el)
		delete(l.items, it.id)
		l.used -= it.cost
	}
}

func (l *sumLRU) drop(id store.MessageID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[id]; ok {
		l.used -= el.Value.(*sumItem).cost
		l.order.Remove(el)
		delete(l.items, id)
	}
}

// len reports how many summaries are held (for tests and benchmarks).
func (l *sumLRU) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

// summariesOf returns the summaries of ids, from the LRU or else from the
// cache in one read transaction. A summary that is missing or unreadable is
// nil (front ends then work from the body) and logged.
func (a *Account) summariesOf(ids []store.MessageID) []*pgp.Summary {
	out := make([]*pgp.Summary, len(ids))
	var miss []store.MessageID
	var at []int
	for i, id := range ids {
		if s := a.sums.get(id); s != nil {
			out[i] = s
		} else {
			miss = append(miss, id)
			at = append(at, i)
		}
	}
	if len(miss) == 0 {
		return out
	}
	got, failed, err := a.cache.summaries(miss)
	if err != nil || failed > 0 {
		a.log.Warn("bridge: cached summaries unreadable; their messages are shown from the body",
			"failed", failed, "err", err)
	}
	for j, s := range got {
		if s != nil {
			out[at[j]] = s
			a.sums.put(miss[j], s)
		}
	}
	return out
}

// summaryOf returns one message's summary, or nil.
func (a *Account) summaryOf(id store.MessageID) *pgp.Summary {
	return a.summariesOf([]store.MessageID{id})[0]
}
