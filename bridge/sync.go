package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// Tuning of the sync engine.
const (
	headerBatch       = 500  // header blobs per HeaderBlobs call (the API's maximum)
	headerDownloaders = 3    // HeaderBlobs calls in flight at once
	eventPage         = 1000 // the API's maximum
	minBackoff        = 250 * time.Millisecond
	maxBackoff        = 10 * time.Second
)

// Run keeps the account in sync with the server until ctx ends: it catches
// up (a full listing on the first run, else the events since the last one
// applied), then follows the live event stream. A lost connection is retried
// with exponential backoff (capped at 10 s) and resumes from the last
// applied event; the View keeps serving from the cache meanwhile. Run returns
// nil when ctx ends.
func (a *Account) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if a.cfg.PrefetchWorkers >= 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.prefetchLoop(ctx)
		}()
	}
	backoff := minBackoff
	for {
		streamed, err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if streamed {
			backoff = minBackoff
		}
		a.log.Warn("bridge: lost the server; reconnecting", "in", backoff.String(), "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session is one connection's worth of sync. streamed reports whether it
// got as far as the live stream (then the next retry starts fast again).
func (a *Account) session(ctx context.Context) (streamed bool, err error) {
	who, err := a.srv.WhoAmI(ctx)
	if err != nil {
		return false, err
	}
	if err := a.setAddresses(who.Addresses); err != nil {
		return false, err
	}
	if a.currentSeq() == 0 {
		err = a.fullSync(ctx)
	} else {
		err = a.catchUp(ctx)
	}
	if err != nil {
		return false, err
	}
	a.markSynced()
	a.kickPrefetch()
	err = a.srv.StreamEvents(ctx, a.currentSeq(), func(ev store.Event) error {
		return a.applyEvent(ctx, ev)
	})
	return true, err
}

func (a *Account) currentSeq() uint64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.seq
}

func (a *Account) setAddresses(addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	a.mu.Lock()
	a.addresses = append([]string(nil), addrs...)
	a.mu.Unlock()
	return a.cache.db.Update(func(tx *bolt.Tx) error { return a.cache.putAddresses(tx, addrs) })
}

// lastEventSeq pages through the event log to its end. It runs before the
// listing, so events that happen during a full sync are replayed after it
// (harmless: applying them is idempotent).
func (a *Account) lastEventSeq(ctx context.Context) (uint64, error) {
	var after uint64
	for {
		evs, err := a.srv.EventsSince(ctx, after, eventPage)
		if err != nil {
			return 0, err
		}
		if len(evs) == 0 {
			return after, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// fullSync makes the cache equal to the server's listing, downloading the
// header blobs of messages it does not have yet. An interrupted full sync
// keeps what it fetched; the next one only fetches the rest.
func (a *Account) fullSync(ctx context.Context) error {
	last, err := a.lastEventSeq(ctx)
	if err != nil {
		return err
	}
	list, err := a.srv.ListMailboxes(ctx)
	if err != nil {
		return err
	}
	if err := a.reconcileMailboxes(list, 0); err != nil {
		return err
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Name == "INBOX" && list[j].Name != "INBOX" })
	type job struct {
		mbID  uint64
		metas []store.MessageMeta
	}
	var jobs []job
	total := 0
	for _, mb := range list {
		metas, err := a.srv.ListMessages(ctx, mb.Name, 1)
		if errors.Is(err, store.ErrMailboxNotFound) {
			continue // deleted meanwhile; its event follows
		}
		if err != nil {
			return err
		}
		fresh, err := a.mergeListing(mb.ID, metas)
		if err != nil {
			return err
		}
		jobs = append(jobs, job{mb.ID, fresh})
		total += len(fresh)
	}
	prog := a.newProgress(total)
	for _, j := range jobs {
		if err := a.fetchMessages(ctx, j.mbID, j.metas, prog); err != nil {
			prog.stop()
			return err
		}
	}
	prog.finish()
	if err := a.recordSeq(last); err != nil {
		return err
	}
	if err := a.flushSeq(); err != nil {
		return err
	}
	return a.cache.sync()
}

// mergeListing applies a mailbox's full listing to what is cached: removes
// what the server no longer has, updates flags, and returns what is new.
func (a *Account) mergeListing(mbID uint64, metas []store.MessageMeta) ([]store.MessageMeta, error) {
	onServer := make(map[uint32]bool, len(metas))
	flags := map[uint32][]string{}
	modseq := map[uint32]uint64{}
	var fresh []store.MessageMeta
	var gone []uint32
	a.mu.RLock()
	b := a.boxes[mbID]
	for _, m := range metas {
		onServer[m.UID] = true
		if b == nil {
			continue
		}
		if _, ok := b.find(m.UID); ok {
			flags[m.UID], modseq[m.UID] = m.Flags, m.ModSeq
		} else {
			fresh = append(fresh, m)
		}
	}
	if b != nil {
		for _, e := range b.msgs {
			if !onServer[e.uid] {
				gone = append(gone, e.uid)
			}
		}
	}
	a.mu.RUnlock()
	if err := a.removeUIDs(mbID, gone, 0); err != nil {
		return nil, err
	}
	if err := a.setFlags(mbID, flags, modseq, 0); err != nil {
		return nil, err
	}
	return fresh, nil
}

// catchUp applies the events since the last applied one.
func (a *Account) catchUp(ctx context.Context) error {
	for {
		evs, err := a.srv.EventsSince(ctx, a.currentSeq(), eventPage)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			if err := a.flushSeq(); err != nil {
				return err
			}
			return a.cache.sync()
		}
		for _, ev := range evs {
			if err := a.applyEvent(ctx, ev); err != nil {
				return err
			}
		}
	}
}

// applyEvent applies one event of the account's log.
func (a *Account) applyEvent(ctx context.Context, ev store.Event) error {
	if ev.Seq <= a.currentSeq() {
		return nil
	}
	a.mu.RLock()
	b := a.boxes[ev.MailboxID]
	var name string
	known := false
	if b != nil {
		name = b.info.Name
		_, known = b.find(ev.UID)
	}
	a.mu.RUnlock()
	switch ev.Kind {
	case store.EventMessageAdded:
		if b == nil {
			return a.refreshMailboxes(ctx, ev.Seq)
		}
		if !known {
			a.appends.wait(ctx, ev.MailboxID, appendWait)
			known = a.knows(ev.MailboxID, ev.UID)
		}
		if known {
			return a.recordSeq(ev.Seq)
		}
		// Everything from this UID on: later additions come in the same
		// batch, and their own events are then no-ops.
		metas, err := a.srv.ListMessages(ctx, name, ev.UID)
		if errors.Is(err, store.ErrMailboxNotFound) {
			return a.recordSeq(ev.Seq)
		}
		if err != nil {
			return err
		}
		fresh, err := a.unknown(ev.MailboxID, metas)
		if err != nil {
			return err
		}
		if err := a.fetchMessages(ctx, ev.MailboxID, fresh, nil); err != nil {
			return err
		}
		return a.recordSeq(ev.Seq)
	case store.EventFlagsChanged:
		return a.setFlags(ev.MailboxID, map[uint32][]string{ev.UID: ev.Flags}, map[uint32]uint64{ev.UID: ev.ModSeq}, ev.Seq)
	case store.EventExpunged:
		return a.removeUIDs(ev.MailboxID, []uint32{ev.UID}, ev.Seq)
	default:
		return a.refreshMailboxes(ctx, ev.Seq)
	}
}

// knows reports whether the index has uid in mailbox mbID.
func (a *Account) knows(mbID uint64, uid uint32) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if b := a.boxes[mbID]; b != nil {
		_, ok := b.find(uid)
		return ok
	}
	return false
}

// refreshMailboxes re-reads the mailbox list; mailbox events are rare and
// a rename moves children too, so re-listing is simpler than patching.
func (a *Account) refreshMailboxes(ctx context.Context, seq uint64) error {
	list, err := a.srv.ListMailboxes(ctx)
	if err != nil {
		return err
	}
	return a.reconcileMailboxes(list, seq)
}

// unknown returns the metas whose UID the index lacks.
func (a *Account) unknown(mbID uint64, metas []store.MessageMeta) ([]store.MessageMeta, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	b := a.boxes[mbID]
	if b == nil {
		return nil, nil
	}
	var out []store.MessageMeta
	for _, m := range metas {
		if _, ok := b.find(m.UID); !ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// fetchMessages downloads the header blobs of metas (in UID order) in
// batches, several in flight, opens them on all cores, and adds the
// messages to mailbox mbID. Messages whose final form needs the body
// (encrypted from outside, or an unreadable header blob) get it now, so the
// summary a client first sees is already the right one.
//
// Batches are prepared in parallel but added strictly in order: an IMAP
// session that has the mailbox selected can only append to its message
// list (sequence numbers grow with UIDs), so a batch of higher UIDs shown
// before a lower one would hide the lower one until the next SELECT. A
// prepared batch waits for its predecessor's turn, which bounds what is
// held out of order to one batch per downloader.
func (a *Account) fetchMessages(ctx context.Context, mbID uint64, metas []store.MessageMeta, prog *progress) error {
	if len(metas) == 0 {
		return nil
	}
	if !sortedByUID(metas) {
		metas = slices.Clone(metas)
		slices.SortFunc(metas, func(x, y store.MessageMeta) int { return cmp.Compare(x.UID, y.UID) })
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		metas []store.MessageMeta
		turn  <-chan struct{} // closed once the previous batch is added
		done  chan struct{}   // closed once this batch is added
	}
	jobs := make(chan job)
	errc := make(chan error, headerDownloaders)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	var wg sync.WaitGroup
	for w := 0; w < headerDownloaders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				p, err := a.prepareBatch(ctx, j.metas)
				if err != nil {
					fail(err)
					return
				}
				select {
				case <-j.turn:
				case <-ctx.Done():
					return
				}
				if len(p.es) > 0 {
					if err := a.addEntries(mbID, p.es, p.bodies, 0); err != nil {
						fail(err)
						return
					}
				}
				close(j.done)
				prog.add(len(j.metas))
			}
		}()
	}
	size := headerBatch
	if a.syncBatch > 0 {
		size = min(a.syncBatch, headerBatch)
	}
	turn := make(chan struct{})
	close(turn)
feed:
	for start := 0; start < len(metas); start += size {
		j := job{metas: metas[start:min(start+size, len(metas))], turn: turn, done: make(chan struct{})}
		select {
		case jobs <- j:
			turn = j.done
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

func sortedByUID(metas []store.MessageMeta) bool {
	return slices.IsSortedFunc(metas, func(x, y store.MessageMeta) int { return cmp.Compare(x.UID, y.UID) })
}

// preparedBatch is a batch of messages opened and ready to be added.
type preparedBatch struct {
	es     []*entry
	bodies map[store.MessageID][]byte
}

// prepareBatch downloads and opens one batch of at most headerBatch
// messages; messages expunged meanwhile are left out.
func (a *Account) prepareBatch(ctx context.Context, metas []store.MessageMeta) (preparedBatch, error) {
	ids := make([]store.MessageID, len(metas))
	for i, m := range metas {
		ids[i] = m.ID
	}
	blobs, err := a.srv.HeaderBlobs(ctx, ids)
	if isGone(err) {
		// One of them was expunged meanwhile: fall back to one by one.
		return a.prepareEach(ctx, metas)
	}
	if err != nil {
		return preparedBatch{}, fmt.Errorf("bridge: download header blobs: %w", err)
	}
	if len(blobs) != len(metas) {
		return preparedBatch{}, fmt.Errorf("bridge: server returned %d header blobs for %d messages", len(blobs), len(metas))
	}
	p := preparedBatch{bodies: map[store.MessageID][]byte{}}
	return p, a.openInto(ctx, &p, metas, blobs)
}

// openInto opens header blobs and appends their messages to p.
func (a *Account) openInto(ctx context.Context, p *preparedBatch, metas []store.MessageMeta, blobs [][]byte) error {
	entries := make([]*entry, len(metas))
	herrs := make([]error, len(metas))
	a.openHeaders(metas, blobs, entries, herrs)
	for i, e := range entries {
		if herrs[i] != nil || (e.sum != nil && (e.sum.Encrypted || hasOurResult(e.sum.Header))) {
			body, _, err := a.materialize(ctx, e, herrs[i])
			if isGone(err) {
				continue
			}
			if err != nil {
				return err
			}
			p.bodies[e.id] = body
		}
		p.es = append(p.es, e)
	}
	return nil
}

// prepareEach is prepareBatch for one message at a time, skipping those
// gone.
func (a *Account) prepareEach(ctx context.Context, metas []store.MessageMeta) (preparedBatch, error) {
	p := preparedBatch{bodies: map[store.MessageID][]byte{}}
	for _, m := range metas {
		blobs, err := a.srv.HeaderBlobs(ctx, []store.MessageID{m.ID})
		if isGone(err) {
			continue
		}
		if err != nil {
			return preparedBatch{}, fmt.Errorf("bridge: download header blob: %w", err)
		}
		if len(blobs) == 1 {
			if err := a.openInto(ctx, &p, []store.MessageMeta{m}, blobs); err != nil {
				return preparedBatch{}, err
			}
		}
	}
	return p, nil
}

// openHeaders decrypts header blobs in parallel across the cores.
func (a *Account) openHeaders(metas []store.MessageMeta, blobs [][]byte, entries []*entry, herrs []error) {
	workers := runtime.GOMAXPROCS(0)
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= len(metas) {
					return
				}
				m := metas[k]
				e := &entry{uid: m.UID, id: m.ID, flags: m.Flags, date: m.InternalDate, size: m.Size, modseq: m.ModSeq}
				sum, err := pgp.OpenHeaderBlob(blobs[k], a.key)
				if err != nil {
					a.log.Info("bridge: header blob could not be opened", "err", err)
					herrs[k] = err
				} else {
					e.sum = sum
				}
				entries[k] = e
			}
		}()
	}
	wg.Wait()
}
