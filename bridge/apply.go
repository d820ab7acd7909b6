package bridge

import (
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// This file applies changes to the cache and the index. Every function is
// idempotent, because each change reaches us twice when this bridge made it
// (the server's answer, then the event): a change that is already applied
// changes nothing and notifies nobody, which is how events of our own
// operations are de-duplicated. Each takes changeMu, so changes apply one at
// a time and watchers see them in order.

// addGroup is a batch of messages for one mailbox: entries (with their
// summaries when new to the cache) and bodies to cache by message id.
type addGroup struct {
	mbID   uint64
	es     []*entry
	bodies map[store.MessageID][]byte
}

// learnItem is a received INBOX message for the Autocrypt learner.
type learnItem struct {
	from   string
	header []byte
	date   time.Time
}

// addEntries inserts messages into mailbox mbID, skipping UIDs already
// known, caches the given bodies (by message id) and records seq (0: leave
// the stored Seq alone). It notifies watchers of each added UID.
func (a *Account) addEntries(mbID uint64, es []*entry, bodies map[store.MessageID][]byte, seq uint64) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	return a.addGroupsLocked([]addGroup{{mbID: mbID, es: es, bodies: bodies}}, seq)
}

// addGroupsLocked adds several mailboxes' messages in one cache
// transaction. Entries carrying a summary have it written to the cache and
// the summary LRU, and leave the index without it. The caller holds
// changeMu.
func (a *Account) addGroupsLocked(groups []addGroup, seq uint64) error {
	type plan struct {
		g     addGroup
		b     *mbox
		fresh []*entry
		info  store.Mailbox
	}
	plans := make([]plan, 0, len(groups))
	var learn []learnItem
	learner := a.learnerFunc()
	a.mu.RLock()
	for _, g := range groups {
		b := a.boxes[g.mbID]
		if b == nil {
			continue
		}
		p := plan{g: g, b: b, info: b.info}
		seen := map[uint32]bool{}
		for _, e := range g.es {
			if _, ok := b.find(e.uid); !ok && !seen[e.uid] {
				seen[e.uid] = true
				p.fresh = append(p.fresh, e)
			}
		}
		if learner != nil && isInbox(b.info) {
			learn = appendLearn(learn, p.fresh)
		}
		plans = append(plans, p)
	}
	a.mu.RUnlock()
	err := a.cache.db.Update(func(tx *bolt.Tx) error {
		for i := range plans {
			p := &plans[i]
			for _, e := range p.fresh {
				if err := a.putEntryTx(tx, p.g.mbID, e, p.g.bodies); err != nil {
					return err
				}
				if e.uid >= p.info.UIDNext {
					p.info.UIDNext = e.uid + 1
				}
			}
			if p.info.UIDNext != p.b.info.UIDNext {
				if err := a.cache.putMailbox(tx, p.info); err != nil {
					return err
				}
			}
		}
		return a.putSeqTx(tx, seq)
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	for _, p := range plans {
		p.b.info.UIDNext = max(p.b.info.UIDNext, p.info.UIDNext)
		for _, e := range p.fresh {
			i, ok := p.b.find(e.uid)
			if ok {
				continue
			}
			if e.sum != nil {
				a.sums.put(e.id, e.sum)
				e.sum = nil // the index stays compact; see summaries.go
			}
			p.b.msgs = slices.Insert(p.b.msgs, i, e)
			a.refs[e.id]++
		}
	}
	a.setSeqLocked(seq)
	a.mu.Unlock()
	added := false
	for _, p := range plans {
		for _, e := range p.fresh {
			a.bodies.note(e.id, p.g.bodies[e.id])
			a.watch.publish(p.g.mbID, Update{Kind: UpdateAdded, UID: e.uid})
			added = true
		}
	}
	for _, l := range learn {
		if err := learner(l.from, l.header, l.date); err != nil {
			a.log.Warn("bridge: Autocrypt state not updated", "err", err)
		}
	}
	if added {
		a.kickPrefetch()
	}
	return nil
}

// putEntryTx writes one new entry: its index record, its summary when it
// carries one (a moved entry does not: its summary is stored under the same
// message id already), and its body when given.
func (a *Account) putEntryTx(tx *bolt.Tx, mbID uint64, e *entry, bodies map[store.MessageID][]byte) error {
	if body, ok := bodies[e.id]; ok {
		if err := a.cache.putBody(tx, e.id, body); err != nil {
			return err
		}
		e.hasBody = true
	}
	if e.sum != nil {
		if err := a.cache.putSummary(tx, e.id, e.sum); err != nil {
			return err
		}
	}
	return a.cache.putMessage(tx, mbID, e)
}

func isInbox(mb store.Mailbox) bool {
	return mb.SpecialUse == store.SpecialInbox || mb.Name == "INBOX"
}

// appendLearn adds what the Autocrypt learner needs of each entry with a
// single From address. Autocrypt Level 1 dates a header by the message's
// Date field; the internal date stands in when it has none.
func appendLearn(out []learnItem, es []*entry) []learnItem {
	for _, e := range es {
		s := e.sum
		if s == nil || len(s.Envelope.From) != 1 {
			continue
		}
		f := s.Envelope.From[0]
		date := s.Envelope.Date
		if date.IsZero() {
			date = e.date
		}
		out = append(out, learnItem{from: f.Mailbox + "@" + f.Host, header: s.Header, date: date})
	}
	return out
}

// setFlags sets the flags of messages of mailbox mbID (uid → flags).
func (a *Account) setFlags(mbID uint64, changes map[uint32][]string, modseq map[uint32]uint64, seq uint64) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	type change struct {
		e     *entry
		flags []string
	}
	var todo []change
	a.mu.RLock()
	if b := a.boxes[mbID]; b != nil {
		for uid, fl := range changes {
			if i, ok := b.find(uid); ok && !slices.Equal(b.msgs[i].flags, fl) {
				todo = append(todo, change{b.msgs[i], fl})
			}
		}
	}
	a.mu.RUnlock()
	if len(todo) == 0 {
		return a.recordSeqLocked(seq)
	}
	err := a.cache.db.Update(func(tx *bolt.Tx) error {
		for _, c := range todo {
			cp := *c.e
			cp.flags = c.flags
			if m := modseq[c.e.uid]; m > cp.modseq {
				cp.modseq = m
			}
			if err := a.cache.putMessage(tx, mbID, &cp); err != nil {
				return err
			}
		}
		return a.putSeqTx(tx, seq)
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	for _, c := range todo {
		c.e.flags = internFlags(c.flags)
		if m := modseq[c.e.uid]; m > c.e.modseq {
			c.e.modseq = m
		}
	}
	a.setSeqLocked(seq)
	a.mu.Unlock()
	for _, c := range todo {
		a.watch.publish(mbID, Update{Kind: UpdateFlags, UID: c.e.uid, Flags: c.flags})
	}
	return nil
}

// removeUIDs removes messages from mailbox mbID. A body stays cached while
// another index entry still refers to its message id (a move adds the new
// entry before it removes the old one).
func (a *Account) removeUIDs(mbID uint64, uids []uint32, seq uint64) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	var gone []*entry
	a.mu.RLock()
	if b := a.boxes[mbID]; b != nil {
		for _, uid := range uids {
			if i, ok := b.find(uid); ok {
				gone = append(gone, b.msgs[i])
			}
		}
	}
	a.mu.RUnlock()
	if len(gone) == 0 {
		return a.recordSeqLocked(seq)
	}
	a.mu.Lock()
	b := a.boxes[mbID]
	var orphans []store.MessageID
	for _, e := range gone {
		if i, ok := b.find(e.uid); ok {
			b.msgs = slices.Delete(b.msgs, i, i+1)
			if a.refs[e.id]--; a.refs[e.id] <= 0 {
				delete(a.refs, e.id)
				orphans = append(orphans, e.id)
			}
		}
	}
	a.setSeqLocked(seq)
	a.mu.Unlock()
	err := a.cache.db.Update(func(tx *bolt.Tx) error {
		for _, e := range gone {
			if err := a.cache.deleteMessage(tx, mbID, e.uid); err != nil {
				return err
			}
		}
		if err := a.deleteOrphansTx(tx, orphans); err != nil {
			return err
		}
		return a.putSeqTx(tx, seq)
	})
	a.dropOrphans(orphans)
	for _, e := range gone {
		a.watch.publish(mbID, Update{Kind: UpdateExpunged, UID: e.uid})
	}
	return err
}

// reconcileMailboxes makes the index's mailbox list equal to the server's.
// A mailbox whose UIDVALIDITY changed is treated as deleted and re-created.
func (a *Account) reconcileMailboxes(list []store.Mailbox, seq uint64) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	a.mu.RLock()
	seen := map[uint64]bool{}
	var gone []uint64
	var put []store.Mailbox
	for _, mb := range list {
		seen[mb.ID] = true
		old := a.boxes[mb.ID]
		if old != nil && old.info.UIDValidity != mb.UIDValidity {
			gone = append(gone, mb.ID)
			old = nil
		}
		if old == nil || old.info.Name != mb.Name || old.info.Subscribed != mb.Subscribed ||
			old.info.SpecialUse != mb.SpecialUse || old.info.UIDNext < mb.UIDNext {
			put = append(put, mb)
		}
	}
	for id := range a.boxes {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	orphans := a.orphansOfLocked(gone)
	a.mu.RUnlock()
	err := a.cache.db.Update(func(tx *bolt.Tx) error {
		for _, id := range gone {
			if err := a.cache.deleteMailbox(tx, id); err != nil {
				return err
			}
		}
		if err := a.deleteOrphansTx(tx, orphans); err != nil {
			return err
		}
		for _, mb := range put {
			if err := a.cache.putMailbox(tx, mb); err != nil {
				return err
			}
		}
		return a.putSeqTx(tx, seq)
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	for _, id := range gone {
		if b := a.boxes[id]; b != nil {
			for _, e := range b.msgs {
				if a.refs[e.id]--; a.refs[e.id] <= 0 {
					delete(a.refs, e.id)
				}
			}
			delete(a.byName, b.info.Name)
			delete(a.boxes, id)
		}
	}
	for _, mb := range put {
		b := a.boxes[mb.ID]
		if b == nil {
			b = &mbox{}
			a.boxes[mb.ID] = b
		} else {
			delete(a.byName, b.info.Name)
		}
		if b.info.UIDNext > mb.UIDNext {
			mb.UIDNext = b.info.UIDNext
		}
		b.info = mb
	}
	for id, b := range a.boxes {
		a.byName[b.info.Name] = id
	}
	a.setSeqLocked(seq)
	a.mu.Unlock()
	a.dropOrphans(orphans)
	for _, id := range gone {
		a.watch.publish(id, Update{Kind: UpdateMailboxDeleted})
	}
	return nil
}

// orphansOfLocked returns the message ids that only the mailboxes gone
// refer to; the caller holds a.mu.
func (a *Account) orphansOfLocked(gone []uint64) []store.MessageID {
	n := map[store.MessageID]int{}
	for _, id := range gone {
		if b := a.boxes[id]; b != nil {
			for _, e := range b.msgs {
				n[e.id]++
			}
		}
	}
	var out []store.MessageID
	for id, k := range n {
		if a.refs[id] <= k {
			out = append(out, id)
		}
	}
	return out
}

// deleteOrphansTx removes the bodies and summaries of messages no index
// entry refers to any more.
func (a *Account) deleteOrphansTx(tx *bolt.Tx, ids []store.MessageID) error {
	for _, id := range ids {
		if err := a.cache.deleteBody(tx, id); err != nil {
			return err
		}
		if err := a.cache.deleteSummary(tx, id); err != nil {
			return err
		}
	}
	return nil
}

func (a *Account) dropOrphans(ids []store.MessageID) {
	for _, id := range ids {
		a.bodies.drop(id)
		a.sums.drop(id)
	}
}

// recordSeq stores seq alone (an event that changed nothing here).
func (a *Account) recordSeq(seq uint64) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	return a.recordSeqLocked(seq)
}

// seqFlushEvery bounds how many events that changed nothing (mostly the
// echoes of this bridge's own operations) may pass before their Seq is
// written. Until then it rides along with the next change's transaction:
// a Seq lost in a crash only means those events are applied again, which
// changes nothing.
const seqFlushEvery = 256

func (a *Account) recordSeqLocked(seq uint64) error {
	if seq == 0 {
		return nil
	}
	a.mu.Lock()
	a.setSeqLocked(seq)
	a.mu.Unlock()
	if a.seq-a.seqStored < seqFlushEvery {
		return nil
	}
	return a.cache.db.Update(func(tx *bolt.Tx) error { return a.putSeqTx(tx, 0) })
}

// flushSeq writes the applied Seq if it is ahead of the stored one.
func (a *Account) flushSeq() error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	if a.seq <= a.seqStored {
		return nil
	}
	return a.cache.db.Update(func(tx *bolt.Tx) error { return a.putSeqTx(tx, 0) })
}

// putSeqTx stores the larger of seq and the applied Seq when it is ahead of
// the stored one. Every change is committed before the in-memory Seq moves
// past its event, so storing a.seq with any later change is safe. The
// caller holds changeMu, under which alone a.seq and a.seqStored change.
func (a *Account) putSeqTx(tx *bolt.Tx, seq uint64) error {
	seq = max(seq, a.seq)
	if seq <= a.seqStored {
		return nil
	}
	if err := a.cache.putSeq(tx, seq); err != nil {
		return err
	}
	a.seqStored = seq
	return nil
}

func (a *Account) setSeqLocked(seq uint64) {
	if seq > a.seq {
		a.seq = seq
	}
}
