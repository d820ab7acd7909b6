package bolt

import (
	"bytes"
	"context"
	"math"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// validMailboxName refuses names a client could not address: empty, empty
// hierarchy levels, or control characters.
func validMailboxName(name string) bool {
	if name == "" || len(name) > 1024 || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] == 0x7f {
			return false
		}
	}
	return true
}

func validSpecialUse(s string) bool {
	switch s {
	case store.SpecialNone, store.SpecialInbox, store.SpecialSent, store.SpecialDrafts,
		store.SpecialTrash, store.SpecialJunk, store.SpecialArchive:
		return true
	}
	return false
}

// mailboxRef is a mailbox loaded for update: its record and buckets.
type mailboxRef struct {
	store.Mailbox
	msgs *bbolt.Bucket // UID → message record
}

// findMailbox loads a mailbox by (normalised) name.
func findMailbox(ab *bbolt.Bucket, name string) (*mailboxRef, error) {
	v := ab.Bucket(bucketNames).Get([]byte(store.NormalizeMailbox(name)))
	if v == nil || len(v) != 8 {
		return nil, store.ErrMailboxNotFound
	}
	id := be64(v)
	m, err := decodeMailbox(id, ab.Bucket(bucketMailboxes).Get(v))
	if err != nil {
		return nil, err
	}
	msgs := ab.Bucket(bucketMessages).Bucket(v)
	if msgs == nil {
		return nil, store.ErrCorrupt
	}
	return &mailboxRef{Mailbox: m, msgs: msgs}, nil
}

func putMailbox(ab *bbolt.Bucket, m *store.Mailbox) error {
	return ab.Bucket(bucketMailboxes).Put(u64key(m.ID), encodeMailbox(m))
}

// createMailbox adds a mailbox and logs its creation; name is normalised.
func createMailbox(ab *bbolt.Bucket, a *account, name, special string, subscribed bool) (store.Mailbox, error) {
	names := ab.Bucket(bucketNames)
	if names.Get([]byte(name)) != nil {
		return store.Mailbox{}, store.ErrMailboxExists
	}
	if a.nextUIDValidity == 0 || a.nextUIDValidity == math.MaxUint32 {
		a.nextUIDValidity = 1 // wrapped after 4 billion creations; 0 is not a valid UIDVALIDITY
	}
	m := store.Mailbox{ID: a.nextMailbox, Name: name, SpecialUse: special, UIDValidity: a.nextUIDValidity,
		UIDNext: 1, HighestModSeq: 1, Subscribed: subscribed}
	a.nextMailbox++
	a.nextUIDValidity++
	key := u64key(m.ID)
	if err := names.Put([]byte(name), key); err != nil {
		return m, err
	}
	if _, err := ab.Bucket(bucketMessages).CreateBucket(key); err != nil {
		return m, err
	}
	if err := putMailbox(ab, &m); err != nil {
		return m, err
	}
	return m, logEvent(ab, a, store.Event{Kind: store.EventMailboxCreated, Mailbox: name, MailboxID: m.ID})
}

// ListMailboxes returns the account's mailboxes in creation order, so the
// default ones come first.
func (s *Store) ListMailboxes(ctx context.Context, id store.AccountID) ([]store.Mailbox, error) {
	var out []store.Mailbox
	err := s.view("list mailboxes", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		return ab.Bucket(bucketMailboxes).ForEach(func(k, v []byte) error {
			m, err := decodeMailbox(be64(k), v)
			out = append(out, m)
			return err
		})
	})
	return out, err
}

// GetMailbox returns one mailbox by name.
func (s *Store) GetMailbox(ctx context.Context, id store.AccountID, name string) (store.Mailbox, error) {
	var out store.Mailbox
	err := s.view("get mailbox", func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		m, err := findMailbox(ab, name)
		if err == nil {
			out = m.Mailbox
		}
		return err
	})
	return out, err
}

// CreateMailbox creates a mailbox; ErrMailboxExists if the name is taken.
func (s *Store) CreateMailbox(ctx context.Context, id store.AccountID, name, specialUse string) (store.Mailbox, error) {
	name = store.NormalizeMailbox(name)
	if !validMailboxName(name) || !validSpecialUse(specialUse) {
		return store.Mailbox{}, wrap("create mailbox", store.ErrInvalid)
	}
	var out store.Mailbox
	err := s.update(ctx, "create mailbox", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		if out, err = createMailbox(ab, a, name, specialUse, false); err != nil {
			return err
		}
		return putAccount(ab, a)
	})
	if err == nil {
		s.hub.notify(id)
	}
	return out, err
}

// RenameMailbox renames a mailbox and its children, keeping ids, UIDs and
// UIDVALIDITY (RFC 9051 section 6.3.6).
func (s *Store) RenameMailbox(ctx context.Context, id store.AccountID, oldName, newName string) error {
	oldName, newName = store.NormalizeMailbox(oldName), store.NormalizeMailbox(newName)
	if !validMailboxName(newName) || strings.HasPrefix(newName, oldName+"/") {
		return wrap("rename mailbox", store.ErrInvalid)
	}
	err := s.update(ctx, "rename mailbox", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		if oldName == "INBOX" {
			return store.ErrMailboxProtected
		}
		if _, err := findMailbox(ab, oldName); err != nil {
			return err
		}
		names := ab.Bucket(bucketNames)
		// The mailbox itself, then every name under "old/".
		renames := map[string]string{oldName: newName}
		order := []string{oldName}
		prefix := []byte(oldName + "/")
		c := names.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			renames[string(k)] = newName + string(k[len(oldName):])
			order = append(order, string(k))
		}
		for _, from := range order {
			if names.Get([]byte(renames[from])) != nil {
				return store.ErrMailboxExists
			}
		}
		for _, from := range order {
			if err := renameOne(ab, a, from, renames[from]); err != nil {
				return err
			}
		}
		return putAccount(ab, a)
	})
	if err == nil {
		s.hub.notify(id)
	}
	return err
}

func renameOne(ab *bbolt.Bucket, a *account, from, to string) error {
	m, err := findMailbox(ab, from)
	if err != nil {
		return err
	}
	names := ab.Bucket(bucketNames)
	if err := names.Delete([]byte(from)); err != nil {
		return err
	}
	if err := names.Put([]byte(to), u64key(m.ID)); err != nil {
		return err
	}
	m.Name = to
	if err := putMailbox(ab, &m.Mailbox); err != nil {
		return err
	}
	return logEvent(ab, a, store.Event{Kind: store.EventMailboxRenamed, Mailbox: to, OldName: from, MailboxID: m.ID})
}

// DeleteMailbox removes a mailbox and its messages, not its children.
func (s *Store) DeleteMailbox(ctx context.Context, id store.AccountID, name string) error {
	name = store.NormalizeMailbox(name)
	err := s.update(ctx, "delete mailbox", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		if name == "INBOX" {
			return store.ErrMailboxProtected
		}
		m, err := findMailbox(ab, name)
		if err != nil {
			return err
		}
		err = m.msgs.ForEach(func(k, v []byte) error {
			msg, err := decodeMessage(m.ID, be32(k), v)
			if err != nil {
				return err
			}
			a.UsedBytes -= msg.Size
			if err := ab.Bucket(bucketLocations).Delete(u64key(uint64(msg.ID))); err != nil {
				return err
			}
			return releaseBlob(ab, msg.blob)
		})
		if err != nil {
			return err
		}
		key := u64key(m.ID)
		if err := ab.Bucket(bucketMessages).DeleteBucket(key); err != nil {
			return err
		}
		if err := ab.Bucket(bucketMailboxes).Delete(key); err != nil {
			return err
		}
		if err := ab.Bucket(bucketNames).Delete([]byte(name)); err != nil {
			return err
		}
		if err := logEvent(ab, a, store.Event{Kind: store.EventMailboxDeleted, Mailbox: name, MailboxID: m.ID}); err != nil {
			return err
		}
		return putAccount(ab, a)
	})
	if err == nil {
		s.hub.notify(id)
	}
	return err
}

// SetSubscribed sets the mailbox's subscription (RFC 9051 section 6.3.7).
func (s *Store) SetSubscribed(ctx context.Context, id store.AccountID, name string, subscribed bool) error {
	err := s.update(ctx, "subscribe", func(tx *bbolt.Tx) error {
		ab, a, err := loadAccount(tx, id)
		if err != nil {
			return err
		}
		m, err := findMailbox(ab, name)
		if err != nil {
			return err
		}
		m.Subscribed = subscribed
		if err := putMailbox(ab, &m.Mailbox); err != nil {
			return err
		}
		ev := store.Event{Kind: store.EventSubscribed, Mailbox: m.Name, MailboxID: m.ID, Subscribed: subscribed}
		if err := logEvent(ab, a, ev); err != nil {
			return err
		}
		return putAccount(ab, a)
	})
	if err == nil {
		s.hub.notify(id)
	}
	return err
}
