package bridge

import (
	"slices"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// This file applies changes to the cache and the index. Every function is
// idempotent, because each change reaches us twice when this bridge made it
// (the server's answer, then the event): a change that is already applied
// changes nothing and notifies nobody, which is how events of our own
// operations are de-duplicated. Each takes changeMu, so changes apply one at
// a time and watchers see them in order.

// addEntries inserts messages into mailbox mbID, skipping UIDs already
// known, caches the given bodies (by message id) and records seq (0: leave
// the stored Seq alone). It notifies watchers of each added UID.
func (a *Account) addEntries(mbID uint64, es []*entry, bodies map[store.MessageID][]byte, seq uint64) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	a.mu.RLock()
	b := a.boxes[mbID]
	var fresh []*entry
	if b != nil {
		for _, e := range es {
			if _, ok := b.find(e.uid); !ok {
				fresh = append(fresh, e)
			}
		}
	}
	a.mu.RUnlock()
	if b == nil {
		return a.recordSeqLocked(seq)
	}
	var info store.Mailbox
	err := a.cache.db.Update(func(tx *bolt.Tx) error {
		for _, e := range fresh {
			if err := a.cache.putMessage(tx, mbID, e); err != nil {
				return err
			}
			if body, ok := bodies[e.id]; ok {
				if err := a.cache.putBody(tx, e.id, body); err != nil {
					return err
				}
				e.hasBody = true
			}
		}
		info = b.info
		for _, e := range fresh {
			if e.uid >= info.UIDNext {
				info.UIDNext = e.uid + 1
			}
		}
		if info.UIDNext != b.info.UIDNext {
			if err := a.cache.putMailbox(tx, info); err != nil {
				return err
			}
		}
		return a.putSeqTx(tx, seq)
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	b.info.UIDNext = info.UIDNext
	for _, e := range fresh {
		i, ok := b.find(e.uid)
		if ok {
			continue
		}
		b.msgs = slices.Insert(b.msgs, i, e)
		a.refs[e.id]++
	}
	a.setSeqLocked(seq)
	a.mu.Unlock()
	for _, e := range fresh {
		a.bodies.note(e.id, bodies[e.id])
		a.watch.publish(mbID, Update{Kind: UpdateAdded, UID: e.uid})
	}
	if len(fresh) > 0 {
		a.kickPrefetch()
	}
	return nil
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
		c.e.flags = c.flags
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
		for _, id := range orphans {
			if err := a.cache.deleteBody(tx, id); err != nil {
				return err
			}
		}
		return a.putSeqTx(tx, seq)
	})
	for _, id := range orphans {
		a.bodies.drop(id)
	}
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
	a.mu.RUnlock()
	err := a.cache.db.Update(func(tx *bolt.Tx) error {
		for _, id := range gone {
			if err := a.cache.deleteMailbox(tx, id); err != nil {
				return err
			}
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
	for _, id := range gone {
		a.watch.publish(id, Update{Kind: UpdateMailboxDeleted})
	}
	return nil
}

// recordSeq stores seq alone (an event that changed nothing here).
func (a *Account) recordSeq(seq uint64) error {
	a.changeMu.Lock()
	defer a.changeMu.Unlock()
	return a.recordSeqLocked(seq)
}

func (a *Account) recordSeqLocked(seq uint64) error {
	if seq == 0 {
		return nil
	}
	if err := a.cache.db.Update(func(tx *bolt.Tx) error { return a.putSeqTx(tx, seq) }); err != nil {
		return err
	}
	a.mu.Lock()
	a.setSeqLocked(seq)
	a.mu.Unlock()
	return nil
}

func (a *Account) putSeqTx(tx *bolt.Tx, seq uint64) error {
	if seq == 0 {
		return nil
	}
	return a.cache.putSeq(tx, seq)
}

func (a *Account) setSeqLocked(seq uint64) {
	if seq > a.seq {
		a.seq = seq
	}
}
