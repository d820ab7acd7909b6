package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// appendWait bounds how long the event stream waits for this bridge's own
// APPENDs in flight before it fetches a new message itself.
const appendWait = 5 * time.Second

// Append seals raw to the account's own key (signed by it) and stores it.
// The local cache write is grouped with those of concurrent APPENDs (see
// addAppended); the server commit is what makes it durable.
func (a *Account) Append(ctx context.Context, mailbox string, raw []byte, flags []string, date time.Time) (uint32, uint32, error) {
	p, err := a.prepareAppend(mailbox, raw, flags, date, nil, nil)
	if err != nil || p.skipped {
		return p.validity, p.skipUID, err
	}
	defer p.done()
	meta, err := a.srv.Append(ctx, p.name, p.msg)
	if err != nil {
		return 0, 0, fmt.Errorf("bridge: append: %w", err)
	}
	a.finishAppend(ctx, p, meta)
	return p.validity, meta.UID, nil
}

// preparedAppend is a message sealed for one of the account's mailboxes
// and registered as in flight, waiting for the server's answer.
type preparedAppend struct {
	mbID     uint64
	validity uint32
	name     string // the mailbox's canonical name
	raw      []byte
	sum      *pgp.Summary
	msg      store.NewMessage // what the server stores
	// skipped: the Append filter recognised a copy already stored (a mail
	// client's own Sent copy), at skipUID; nothing is to be sent.
	skipped bool
	skipUID uint32
	done    func() // ends the in-flight registration; call once
}

// prepareAppend seals raw for mailbox and registers the append with the
// tracker, so that the event the server pushes for it waits for
// finishAppend instead of downloading the message again. Unless skipped,
// the caller must call done, after finishAppend when the server took it.
// sum is raw's summary when the caller already has it, else nil; sealed
// are raw's blobs, sealed to this account's key with that summary, when
// the caller already sealed them (the router's To/Cc sealing), else nil.
func (a *Account) prepareAppend(mailbox string, raw []byte, flags []string, date time.Time, sum *pgp.Summary, sealed *sealedBlobs) (*preparedAppend, error) {
	mbID, validity, name, err := a.mailboxID(mailbox)
	if err != nil {
		return &preparedAppend{}, err
	}
	p := &preparedAppend{mbID: mbID, validity: validity, name: name, raw: raw}
	a.mu.RLock()
	filter := a.filter
	a.mu.RUnlock()
	if filter != nil {
		if skip, uid := filter(name, raw); skip {
			p.skipped, p.skipUID = true, uid
			return p, nil
		}
	}
	if sum == nil {
		if sum, err = pgp.Summarize(raw); err != nil {
			return &preparedAppend{}, fmt.Errorf("bridge: seal: %w", err)
		}
	}
	var hb, bb []byte
	if sealed != nil {
		hb, bb = sealed.header, sealed.body
	} else if hb, bb, err = pgp.SealBlobs(pgp.EncodeSummary(sum), raw, []*pgp.Key{a.key}, pgp.SealOptions{Signer: a.key}); err != nil {
		return &preparedAppend{}, fmt.Errorf("bridge: seal: %w", err)
	}
	p.sum = sum
	p.msg = store.NewMessage{Flags: flags, InternalDate: date, Size: int64(len(raw)), HeaderBlob: hb, BodyBlob: bb}
	p.done = a.appends.begin(mbID)
	return p, nil
}

// finishAppend caches a prepared message the server stored as meta.
func (a *Account) finishAppend(ctx context.Context, p *preparedAppend, meta store.MessageMeta) {
	e := &entry{uid: meta.UID, id: meta.ID, flags: internFlags(meta.Flags), date: meta.InternalDate,
		size: meta.Size, modseq: meta.ModSeq, sum: p.sum}
	var body []byte
	if p.sum.Encrypted {
		// An already encrypted message (rare: a client filing PGP mail):
		// show it decrypted like one that arrived so.
		if b, _, err := a.materialize(ctx, e, nil); err == nil {
			body = b
		}
	} else {
		body = p.raw
	}
	if err := a.addAppended(p.mbID, e, body); err != nil {
		a.log.Warn("bridge: appended message not cached yet", "err", err)
	}
}

// pendingAdd is one appended message waiting for a grouped cache write.
type pendingAdd struct {
	mbID uint64
	e    *entry
	body []byte
	err  error
	done chan struct{}
}

// addAppended adds an appended message to the cache and the index. Writes
// of concurrent APPENDs (several clients, or the router filing Sent copies
// of parallel submissions) are combined: whoever gets changeMu next writes
// every pending one in a single transaction. The cache is a rebuildable
// copy opened with NoSync, so no fsync happens here either way; grouping
// saves the per-transaction page writes and lock hand-overs.
func (a *Account) addAppended(mbID uint64, e *entry, body []byte) error {
	p := &pendingAdd{mbID: mbID, e: e, body: body, done: make(chan struct{})}
	a.pendMu.Lock()
	a.pending = append(a.pending, p)
	a.pendMu.Unlock()
	a.changeMu.Lock()
	a.pendMu.Lock()
	batch := a.pending
	a.pending = nil
	a.pendMu.Unlock()
	if len(batch) > 0 {
		a.writePendingLocked(batch)
	}
	a.changeMu.Unlock()
	// p was queued before changeMu was taken, so whoever drained it has
	// finished with it by now.
	<-p.done
	return p.err
}

func (a *Account) writePendingLocked(batch []*pendingAdd) {
	byBox := map[uint64]int{}
	var groups []addGroup
	for _, p := range batch {
		i, ok := byBox[p.mbID]
		if !ok {
			i = len(groups)
			byBox[p.mbID] = i
			groups = append(groups, addGroup{mbID: p.mbID, bodies: map[store.MessageID][]byte{}})
		}
		groups[i].es = append(groups[i].es, p.e)
		if p.body != nil {
			groups[i].bodies[p.e.id] = p.body
		}
	}
	err := a.addGroupsLocked(groups, 0)
	for _, p := range batch {
		p.err = err
		close(p.done)
	}
}

// appendTracker knows which APPENDs of this bridge are waiting for the
// server, per mailbox. The server pushes the event of an appended message
// as soon as it commits, often before its answer to the APPEND arrives; the
// event stream then waits for those APPENDs instead of downloading and
// decrypting a message that Append is about to cache from what it holds.
type appendTracker struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]map[uint64]chan struct{} // mailbox id → ticket → closed when done
}

// begin registers an APPEND to mbID; call the returned func when it is
// cached (or failed).
func (t *appendTracker) begin(mbID uint64) func() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[uint64]map[uint64]chan struct{}{}
	}
	if t.m[mbID] == nil {
		t.m[mbID] = map[uint64]chan struct{}{}
	}
	t.next++
	id, ch := t.next, make(chan struct{})
	t.m[mbID][id] = ch
	return func() {
		t.mu.Lock()
		delete(t.m[mbID], id)
		if len(t.m[mbID]) == 0 {
			delete(t.m, mbID)
		}
		t.mu.Unlock()
		close(ch)
	}
}

// wait blocks until every APPEND to mbID in flight now has finished, or
// until d or ctx ends. APPENDs that begin later are not waited for.
func (t *appendTracker) wait(ctx context.Context, mbID uint64, d time.Duration) {
	t.mu.Lock()
	chans := make([]chan struct{}, 0, len(t.m[mbID]))
	for _, ch := range t.m[mbID] {
		chans = append(chans, ch)
	}
	t.mu.Unlock()
	if len(chans) == 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
