package bridge

import (
	"container/list"
	"sync"

	"smessenger/internal/store"
)

// bodyLRU keeps recently used decrypted bodies in memory up to a byte
// budget, so a client fetching one message several times (BODYSTRUCTURE,
// then parts) decrypts it once, while memory stays bounded whatever the
// mailbox size.
//
// A body is kept only the second time it is put while its id is still
// among the last ghostLen ids seen (as 2Q does). Why: a client downloading
// or searching a whole mailbox (FETCH 1:* BODY[], SEARCH TEXT) reads every
// body once; keeping each would turn over the whole budget as garbage and,
// with the collector's pacing, double the heap, for no hit at all. The cost
// of a first touch not kept is one more read and decryption from the disk
// cache when the message is opened again.
type bodyLRU struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front = most recent; values are *lruItem
	items map[store.MessageID]*list.Element
	ghost ghostRing
}

// ghostLen is how many ids of bodies put once are remembered.
const ghostLen = 1024

// ghostRing remembers the last ghostLen ids it was given.
type ghostRing struct {
	ring []store.MessageID
	next int
	in   map[store.MessageID]struct{}
}

// touch reports whether id was seen recently, and remembers it.
func (g *ghostRing) touch(id store.MessageID) bool {
	if _, ok := g.in[id]; ok {
		return true
	}
	if g.in == nil {
		g.ring, g.in = make([]store.MessageID, ghostLen), make(map[store.MessageID]struct{}, ghostLen)
	}
	if len(g.in) == ghostLen {
		delete(g.in, g.ring[g.next])
	}
	g.ring[g.next] = id
	g.in[id] = struct{}{}
	g.next = (g.next + 1) % ghostLen
	return false
}

type lruItem struct {
	id   store.MessageID
	body []byte
}

func newBodyLRU(max int64) *bodyLRU {
	return &bodyLRU{max: max, order: list.New(), items: map[store.MessageID]*list.Element{}}
}

func (l *bodyLRU) get(id store.MessageID) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[id]; ok {
		l.order.MoveToFront(el)
		return el.Value.(*lruItem).body
	}
	return nil
}

// held is what a kept body costs: its capacity, not its length, since the
// whole array stays alive (a decrypted body's buffer may be larger than the
// body).
func held(b []byte) int64 { return int64(cap(b)) }

// put remembers body; a body larger than a quarter of the budget is not
// kept, so one attachment cannot evict everything else.
func (l *bodyLRU) put(id store.MessageID, body []byte) {
	n := held(body)
	if len(body) == 0 || n > l.max/4 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[id]; ok {
		l.used -= held(el.Value.(*lruItem).body)
		el.Value.(*lruItem).body = body
		l.used += n
		l.order.MoveToFront(el)
	} else if !l.ghost.touch(id) {
		return // first touch: remembered, not kept
	} else {
		l.items[id] = l.order.PushFront(&lruItem{id: id, body: body})
		l.used += n
	}
	for l.used > l.max {
		el := l.order.Back()
		it := el.Value.(*lruItem)
		l.order.Remove(el)
		delete(l.items, it.id)
		l.used -= held(it.body)
	}
}

// note is put for a body we just wrote (nil: nothing to remember).
func (l *bodyLRU) note(id store.MessageID, body []byte) {
	if body != nil {
		l.put(id, body)
	}
}

func (l *bodyLRU) drop(id store.MessageID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[id]; ok {
		l.used -= held(el.Value.(*lruItem).body)
		l.order.Remove(el)
		delete(l.items, id)
	}
}

// flightGroup makes concurrent requests for the same body share one
// download and decryption.
type flightGroup struct {
	mu sync.Mutex
	m  map[store.MessageID]*flight
}

type flight struct {
	done chan struct{}
	body []byte
	err  error
}

func (g *flightGroup) do(id store.MessageID, fn func() ([]byte, error)) ([]byte, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[store.MessageID]*flight{}
	}
	if f, ok := g.m[id]; ok {
		g.mu.Unlock()
		<-f.done
		return f.body, f.err
	}
	f := &flight{done: make(chan struct{})}
	g.m[id] = f
	g.mu.Unlock()
	f.body, f.err = fn()
	g.mu.Lock()
	delete(g.m, id)
	g.mu.Unlock()
	close(f.done)
	return f.body, f.err
}
