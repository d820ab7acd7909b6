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
type bodyLRU struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // front = most recent; values are *lruItem
	items map[store.MessageID]*list.Element
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

// put remembers body; a body larger than a quarter of the budget is not
// kept, so one attachment cannot evict everything else.
func (l *bodyLRU) put(id store.MessageID, body []byte) {
	n := int64(len(body))
	if n == 0 || n > l.max/4 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.items[id]; ok {
		l.used -= int64(len(el.Value.(*lruItem).body))
		el.Value.(*lruItem).body = body
		l.used += n
		l.order.MoveToFront(el)
	} else {
		l.items[id] = l.order.PushFront(&lruItem{id: id, body: body})
		l.used += n
	}
	for l.used > l.max {
		el := l.order.Back()
		it := el.Value.(*lruItem)
		l.order.Remove(el)
		delete(l.items, it.id)
		l.used -= int64(len(it.body))
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
		l.used -= int64(len(el.Value.(*lruItem).body))
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
