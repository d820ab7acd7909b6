package bridge

import (
	"sync"

	"smessenger/internal/store"
)

// watchHub fans updates out to watchers of a mailbox. Publishing never
// blocks: each watcher has an unbounded queue drained by its own goroutine,
// and flag updates of a UID still waiting in the queue are merged into the
// latest one, so a burst (a first sync, a client marking 5,000 messages read)
// costs the front end one update per message, not one per change.
type watchHub struct {
	mu       sync.Mutex
	watchers map[uint64]map[*watcher]struct{}
}

type watcher struct {
	mbID   uint64
	name   func() string
	mu     sync.Mutex
	queue  []Update
	flagAt map[uint32]int // queue index of the pending flag update of a UID
	wake   chan struct{}
	done   chan struct{}
	out    chan Update
}

func (h *watchHub) init() { h.watchers = map[uint64]map[*watcher]struct{}{} }

func (h *watchHub) publish(mbID uint64, u Update) {
	h.mu.Lock()
	ws := make([]*watcher, 0, len(h.watchers[mbID]))
	for w := range h.watchers[mbID] {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		w.push(u)
	}
}

func (w *watcher) push(u Update) {
	w.mu.Lock()
	if u.Kind == UpdateFlags {
		if i, ok := w.flagAt[u.UID]; ok {
			w.queue[i].Flags = u.Flags
			w.mu.Unlock()
			return
		}
		w.flagAt[u.UID] = len(w.queue)
	}
	w.queue = append(w.queue, u)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run delivers queued updates in order until cancel, then closes out.
func (w *watcher) run() {
	defer close(w.out)
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		clear(w.flagAt)
		w.mu.Unlock()
		name := w.name()
		for _, u := range batch {
			u.Mailbox = name
			select {
			case w.out <- u:
			case <-w.done:
				return
			}
		}
	}
}

// Watch delivers the updates of one mailbox until cancel is called; see
// View. Watching a mailbox that does not exist yields a channel that only
// closes on cancel.
func (a *Account) Watch(mailbox string) (<-chan Update, func()) {
	a.mu.RLock()
	id, ok := a.byName[store.NormalizeMailbox(mailbox)]
	a.mu.RUnlock()
	last := store.NormalizeMailbox(mailbox)
	w := &watcher{
		mbID: id, flagAt: map[uint32]int{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), out: make(chan Update, 64),
	}
	// The name is looked up at delivery so a renamed mailbox's updates
	// carry its current name.
	w.name = func() string {
		a.mu.RLock()
		defer a.mu.RUnlock()
		if b := a.boxes[id]; b != nil {
			last = b.info.Name
		}
		return last
	}
	if ok {
		a.watch.mu.Lock()
		if a.watch.watchers[id] == nil {
			a.watch.watchers[id] = map[*watcher]struct{}{}
		}
		a.watch.watchers[id][w] = struct{}{}
		a.watch.mu.Unlock()
	}
	go w.run()
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			a.watch.mu.Lock()
			delete(a.watch.watchers[id], w)
			if len(a.watch.watchers[id]) == 0 {
				delete(a.watch.watchers, id)
			}
			a.watch.mu.Unlock()
			close(w.done)
		})
	}
	return w.out, cancel
}
