package redis

import (
	"context"
	"fmt"
	"sort"
	"time"

	"smessenger/internal/store"
)

// specialUses are the attributes CreateMailbox accepts (RFC 6154).
var specialUses = map[string]bool{
	store.SpecialNone: true, store.SpecialInbox: true, store.SpecialSent: true,
	store.SpecialDrafts: true, store.SpecialTrash: true, store.SpecialJunk: true,
	store.SpecialArchive: true,
}

// decodeMailboxes reads the rows of mailboxes.lua: id, then name, special,
// uidv, uidnext, hms, sub, msgs, unseen, size.
func decodeMailboxes(f []string) []store.Mailbox {
	const width = 10
	out := make([]store.Mailbox, 0, len(f)/width)
	for i := 0; i+width <= len(f); i += width {
		r := f[i : i+width]
		out = append(out, store.Mailbox{
			ID:            uint64(num(r[0])),
			Name:          r[1],
			SpecialUse:    r[2],
			UIDValidity:   uint32(num(r[3])),
			UIDNext:       uint32(num(r[4])),
			HighestModSeq: uint64(num(r[5])),
			Subscribed:    r[6] == "1",
			Messages:      uint32(num(r[7])),
			Unseen:        uint32(num(r[8])),
			Size:          num(r[9]),
		})
	}
	return out
}

// ListMailboxes returns the account's mailboxes in creation order, so the
// default mailboxes come first in their listed order.
func (s *Store) ListMailboxes(ctx context.Context, id store.AccountID) ([]store.Mailbox, error) {
	v, err := s.acct(ctx, "list mailboxes", scMailboxes, id, "list")
	if err != nil {
		return nil, err
	}
	out := decodeMailboxes(strs(v))
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// GetMailbox returns one mailbox by name.
func (s *Store) GetMailbox(ctx context.Context, id store.AccountID, name string) (store.Mailbox, error) {
	n, err := normMailbox(name)
	if err != nil {
		return store.Mailbox{}, fmt.Errorf("redis: get mailbox: %w", store.ErrMailboxNotFound)
	}
	return s.oneMailbox(ctx, "get mailbox", id, "get", n)
}

func (s *Store) oneMailbox(ctx context.Context, op string, id store.AccountID, args ...any) (store.Mailbox, error) {
	v, err := s.acct(ctx, op, scMailboxes, id, args...)
	if err != nil {
		return store.Mailbox{}, err
	}
	mbs := decodeMailboxes(strs(v))
	if len(mbs) != 1 {
		return store.Mailbox{}, mapErr(op, errNoMbox)
	}
	return mbs[0], nil
}

// CreateMailbox creates a mailbox and logs EventMailboxCreated.
func (s *Store) CreateMailbox(ctx context.Context, id store.AccountID, name, specialUse string) (store.Mailbox, error) {
	n, err := normMailbox(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if !specialUses[specialUse] {
		return store.Mailbox{}, invalid("special-use", specialUse)
	}
	return s.oneMailbox(ctx, "create mailbox", id, "create", n, specialUse, nanos(time.Now()))
}

// RenameMailbox renames a mailbox and its children in one script, logging
// EventMailboxRenamed for each.
func (s *Store) RenameMailbox(ctx context.Context, id store.AccountID, oldName, newName string) error {
	o, err := normMailbox(oldName)
	if err != nil {
		return err
	}
	n, err := normMailbox(newName)
	if err != nil {
		return err
	}
	_, err = s.acct(ctx, "rename mailbox", scRename, id, o, n, nanos(time.Now()))
	return err
}

// DeleteMailbox removes a mailbox and its messages, logging
// EventMailboxDeleted.
func (s *Store) DeleteMailbox(ctx context.Context, id store.AccountID, name string) error {
	n, err := normMailbox(name)
	if err != nil {
		return err
	}
	_, err = s.acct(ctx, "delete mailbox", scDeleteMailbox, id, n, nanos(time.Now()))
	return err
}

// SetSubscribed sets the subscription flag, logging EventSubscribed.
func (s *Store) SetSubscribed(ctx context.Context, id store.AccountID, name string, subscribed bool) error {
	n, err := normMailbox(name)
	if err != nil {
		return err
	}
	sub := "0"
	if subscribed {
		sub = "1"
	}
	_, err = s.oneMailbox(ctx, "set subscribed", id, "subscribe", n, sub, nanos(time.Now()))
	return err
}
