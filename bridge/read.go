package bridge

import (
	"context"
	"slices"
	"sort"

	"smessenger/internal/store"
	"smessenger/pgp"
)

const flagSeen = `\Seen`

// info builds a MailboxInfo from the index; the caller holds a.mu.
func (b *mbox) view() MailboxInfo {
	mi := MailboxInfo{
		Name: b.info.Name, SpecialUse: b.info.SpecialUse, Subscribed: b.info.Subscribed,
		UIDValidity: b.info.UIDValidity, UIDNext: b.info.UIDNext, Messages: uint32(len(b.msgs)),
	}
	if mi.SpecialUse == store.SpecialInbox {
		mi.SpecialUse = ""
	}
	for _, e := range b.msgs {
		mi.Size += e.size
		if !slices.Contains(e.flags, flagSeen) {
			mi.Unseen++
		}
	}
	if n := len(b.msgs); n > 0 && b.msgs[n-1].uid >= mi.UIDNext {
		mi.UIDNext = b.msgs[n-1].uid + 1
	}
	if mi.UIDNext == 0 {
		mi.UIDNext = 1
	}
	return mi
}

// Mailboxes lists all mailboxes from the cache, INBOX first, then by name.
func (a *Account) Mailboxes(ctx context.Context) ([]MailboxInfo, error) {
	a.mu.RLock()
	out := make([]MailboxInfo, 0, len(a.boxes))
	for _, b := range a.boxes {
		out = append(out, b.view())
	}
	a.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == "INBOX") != (out[j].Name == "INBOX") {
			return out[i].Name == "INBOX"
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Mailbox returns one mailbox from the cache.
func (a *Account) Mailbox(ctx context.Context, name string) (MailboxInfo, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	b, err := a.lookup(name)
	if err != nil {
		return MailboxInfo{}, err
	}
	return b.view(), nil
}

// Messages lists a mailbox's messages in UID order from the cache. The
// index gives UIDs, flags, dates and sizes; the summaries come from the
// summary LRU or, for those not in it, from the cache in one read
// transaction. The returned slices and summaries are shared and must not
// be modified.
func (a *Account) Messages(ctx context.Context, mailbox string) ([]MessageInfo, error) {
	out, ids, err := a.list(mailbox)
	if err != nil {
		return nil, err
	}
	for i, s := range a.summariesOf(ids) {
		out[i].Summary = s
	}
	return out, nil
}

// MessageList lists a mailbox's messages in UID order from the index
// alone, without summaries. The returned flag slices are shared and must
// not be modified.
func (a *Account) MessageList(ctx context.Context, mailbox string) ([]MessageInfo, error) {
	out, _, err := a.list(mailbox)
	return out, err
}

// list copies a mailbox's index entries and their message ids.
func (a *Account) list(mailbox string) ([]MessageInfo, []store.MessageID, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	b, err := a.lookup(mailbox)
	if err != nil {
		return nil, nil, err
	}
	out := make([]MessageInfo, len(b.msgs))
	ids := make([]store.MessageID, len(b.msgs))
	for i, e := range b.msgs {
		out[i] = MessageInfo{UID: e.uid, Flags: e.flags, InternalDate: e.date, Size: e.size}
		ids[i] = e.id
	}
	return out, ids, nil
}

// Summaries returns the summaries of uids of a mailbox (see View), from
// the summary LRU or else from the cache in one read transaction.
func (a *Account) Summaries(ctx context.Context, mailbox string, uids []uint32) ([]*pgp.Summary, error) {
	a.mu.RLock()
	b, err := a.lookup(mailbox)
	if err != nil {
		a.mu.RUnlock()
		return nil, err
	}
	ids := make([]store.MessageID, 0, len(uids))
	at := make([]int, 0, len(uids))
	for i, uid := range uids {
		if k, ok := b.find(uid); ok {
			ids = append(ids, b.msgs[k].id)
			at = append(at, i)
		}
	}
	a.mu.RUnlock()
	out := make([]*pgp.Summary, len(uids))
	for j, s := range a.summariesOf(ids) {
		out[at[j]] = s
	}
	return out, nil
}
