package bridge

import (
	"context"
	"fmt"
	"slices"

	"smessenger/internal/store"
)

// Each operation calls the server first and, once it answered (so the change
// is durable there), applies the answer to the cache at once, so the client
// that asked sees its change immediately; the event for it arrives later and
// changes nothing (see apply.go).

// CreateMailbox creates a mailbox on the server.
func (a *Account) CreateMailbox(ctx context.Context, name string) error {
	mb, err := a.srv.CreateMailbox(ctx, store.NormalizeMailbox(name))
	if err != nil {
		return fmt.Errorf("bridge: create mailbox: %w", err)
	}
	a.mu.RLock()
	list := make([]store.Mailbox, 0, len(a.boxes)+1)
	for _, b := range a.boxes {
		list = append(list, b.info)
	}
	a.mu.RUnlock()
	return a.reconcileAdd(list, mb)
}

func (a *Account) reconcileAdd(list []store.Mailbox, mb store.Mailbox) error {
	for i := range list {
		if list[i].ID == mb.ID {
			list[i] = mb
			return a.reconcileMailboxes(list, 0)
		}
	}
	return a.reconcileMailboxes(append(list, mb), 0)
}

// DeleteMailbox deletes a mailbox (not its children) on the server.
func (a *Account) DeleteMailbox(ctx context.Context, name string) error {
	if err := a.srv.DeleteMailbox(ctx, store.NormalizeMailbox(name)); err != nil {
		return fmt.Errorf("bridge: delete mailbox: %w", err)
	}
	return a.refreshMailboxes(ctx, 0)
}

// RenameMailbox renames a mailbox and its children on the server.
func (a *Account) RenameMailbox(ctx context.Context, oldName, newName string) error {
	if err := a.srv.RenameMailbox(ctx, store.NormalizeMailbox(oldName), store.NormalizeMailbox(newName)); err != nil {
		return fmt.Errorf("bridge: rename mailbox: %w", err)
	}
	return a.refreshMailboxes(ctx, 0)
}

// SetSubscribed changes a mailbox's subscription on the server.
func (a *Account) SetSubscribed(ctx context.Context, name string, subscribed bool) error {
	name = store.NormalizeMailbox(name)
	if err := a.srv.SetSubscribed(ctx, name, subscribed); err != nil {
		return fmt.Errorf("bridge: subscribe: %w", err)
	}
	a.mu.RLock()
	list := make([]store.Mailbox, 0, len(a.boxes))
	for _, b := range a.boxes {
		mb := b.info
		if mb.Name == name {
			mb.Subscribed = subscribed
		}
		list = append(list, mb)
	}
	a.mu.RUnlock()
	return a.reconcileMailboxes(list, 0)
}

// mailboxID resolves a name to the cached mailbox's id and UIDVALIDITY.
func (a *Account) mailboxID(name string) (id uint64, validity uint32, canonical string, err error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	b, err := a.lookup(name)
	if err != nil {
		return 0, 0, "", err
	}
	return b.info.ID, b.info.UIDValidity, b.info.Name, nil
}

// StoreFlags changes flags on the server and applies its answer.
func (a *Account) StoreFlags(ctx context.Context, mailbox string, uids []uint32, op FlagOp, flags []string) error {
	mbID, _, name, err := a.mailboxID(mailbox)
	if err != nil {
		return err
	}
	metas, err := a.srv.StoreFlags(ctx, name, uids, op, flags)
	if err != nil {
		return fmt.Errorf("bridge: store flags: %w", err)
	}
	changes := make(map[uint32][]string, len(metas))
	modseq := make(map[uint32]uint64, len(metas))
	for _, m := range metas {
		changes[m.UID], modseq[m.UID] = m.Flags, m.ModSeq
	}
	return a.setFlags(mbID, changes, modseq, 0)
}

// Copy copies messages to dst; it returns dst's UIDVALIDITY and the UIDs.
func (a *Account) Copy(ctx context.Context, src string, uids []uint32, dst string) (uint32, []UIDPair, error) {
	return a.transfer(ctx, src, uids, dst, false)
}

// Move moves messages to dst; it returns dst's UIDVALIDITY and the UIDs.
func (a *Account) Move(ctx context.Context, src string, uids []uint32, dst string) (uint32, []UIDPair, error) {
	return a.transfer(ctx, src, uids, dst, true)
}

func (a *Account) transfer(ctx context.Context, src string, uids []uint32, dst string, move bool) (uint32, []UIDPair, error) {
	srcID, _, srcName, err := a.mailboxID(src)
	if err != nil {
		return 0, nil, err
	}
	dstID, validity, dstName, err := a.mailboxID(dst)
	if err != nil {
		return 0, nil, err
	}
	var pairs []UIDPair
	if move {
		pairs, err = a.srv.Move(ctx, srcName, uids, dstName)
	} else {
		pairs, err = a.srv.Copy(ctx, srcName, uids, dstName)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("bridge: copy/move: %w", err)
	}
	if len(pairs) > 0 {
		if err := a.applyTransfer(ctx, srcID, dstID, dstName, pairs, move); err != nil {
			a.log.Warn("bridge: copied/moved messages not cached yet", "err", err)
		}
	}
	return validity, pairs, nil
}

// applyTransfer mirrors a copy or move in the cache. A move keeps message
// ids, so the entries move as they are; a copy has new ids, which only a
// listing of dst tells.
func (a *Account) applyTransfer(ctx context.Context, srcID, dstID uint64, dstName string, pairs []UIDPair, move bool) error {
	byDst := make(map[uint32]uint32, len(pairs))
	minDst := pairs[0].Dst
	for _, p := range pairs {
		byDst[p.Dst] = p.Src
		minDst = min(minDst, p.Dst)
	}
	var metas map[uint32]store.MessageMeta
	if !move {
		list, err := a.srv.ListMessages(ctx, dstName, minDst)
		if err != nil {
			return err
		}
		metas = make(map[uint32]store.MessageMeta, len(list))
		for _, m := range list {
			metas[m.UID] = m
		}
	}
	var added []*entry
	var srcIDs []store.MessageID
	a.mu.RLock()
	if b := a.boxes[srcID]; b != nil {
		for _, p := range pairs {
			i, ok := b.find(p.Src)
			if !ok {
				continue
			}
			e := *b.msgs[i]
			e.uid = p.Dst
			if !move {
				e.hasBody = false
				m, ok := metas[p.Dst]
				if !ok {
					continue
				}
				srcIDs = append(srcIDs, e.id)
				e.id, e.flags, e.date, e.modseq = m.ID, m.Flags, m.InternalDate, m.ModSeq
			}
			added = append(added, &e)
		}
	}
	a.mu.RUnlock()
	if !move {
		// A copy has a new message id: its summary is stored anew.
		for i, s := range a.summariesOf(srcIDs) {
			added[i].sum = s
		}
	}
	if err := a.addEntries(dstID, added, nil, 0); err != nil {
		return err
	}
	if move {
		src := make([]uint32, len(pairs))
		for i, p := range pairs {
			src[i] = p.Src
		}
		return a.removeUIDs(srcID, src, 0)
	}
	return nil
}

// Expunge removes uids (nil: every \Deleted message) on the server and
// returns the UIDs it removed.
func (a *Account) Expunge(ctx context.Context, mailbox string, uids []uint32) ([]uint32, error) {
	mbID, _, name, err := a.mailboxID(mailbox)
	if err != nil {
		return nil, err
	}
	gone, err := a.srv.Expunge(ctx, name, uids)
	if err != nil {
		return nil, fmt.Errorf("bridge: expunge: %w", err)
	}
	gone = slices.Clone(gone)
	slices.Sort(gone)
	if err := a.removeUIDs(mbID, gone, 0); err != nil {
		a.log.Warn("bridge: expunge not cached yet", "err", err)
	}
	return gone, nil
}
