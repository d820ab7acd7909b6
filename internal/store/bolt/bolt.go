// Package bolt is the embedded store.Store: one bbolt file, fsync'd on every
// commit, with group commit so that concurrent writers share one fsync.
//
// Layout (bucket names are the package vars below): a top-level bucket per
// concern (accounts, addresses, device keys, tokens, queue), and inside
// "accounts" one nested bucket per account holding its record, mailboxes,
// messages (a bucket per mailbox keyed by big-endian UID), blobs and event
// log. IMAP semantics follow RFC 9051 (UIDs, UIDVALIDITY), RFC 7162
// (modification sequences) and RFC 6154 (special-use mailboxes).
//
// Records use the versioned binary layout of store.RecordWriter; migrate.go
// upgrades older files on Open.
package bolt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// Top-level buckets.
var (
	bucketMeta      = []byte("meta")
	bucketAccounts  = []byte("accounts")
	bucketAddresses = []byte("addresses")
	bucketDevKeys   = []byte("devkeys")
	bucketTokens    = []byte("tokens")
	bucketQueue     = []byte("queue")
	bucketQueueDue  = []byte("queuedue")
	bucketQueueDead = []byte("queuedead")
)

// Keys and nested buckets inside one account's bucket.
var (
	keyAccount      = []byte("account")
	keyPublicKey    = []byte("pubkey")
	bucketMailboxes = []byte("mailboxes") // mailbox id → mailbox record
	bucketNames     = []byte("names")     // mailbox name → mailbox id
	bucketMessages  = []byte("messages")  // mailbox id → bucket of UID → message record
	bucketLocations = []byte("locations") // message id → mailbox id, UID
	bucketHeaders   = []byte("headers")   // blob id → header blob
	bucketBodies    = []byte("bodies")    // blob id → body blob (schema 1; read and deleted, never written)
	bucketChunks    = []byte("chunks")    // blob id ‖ chunk index → one page-sized piece of a body blob
	bucketBlobRefs  = []byte("blobrefs")  // blob id → reference count, when above 1
	bucketEvents    = []byte("events")    // seq → event record
	bucketDevices   = []byte("devices")   // device id → device record
)

var topBuckets = [][]byte{bucketMeta, bucketAccounts, bucketAddresses, bucketDevKeys, bucketTokens, bucketQueue, bucketQueueDue, bucketQueueDead}

var accountBuckets = [][]byte{bucketMailboxes, bucketNames, bucketMessages, bucketLocations, bucketHeaders, bucketBodies, bucketChunks, bucketBlobRefs, bucketEvents, bucketDevices}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("bolt: store closed")

// Options tune Open. The zero value is a good default.
type Options struct {
	// LockTimeout bounds the wait for another process's file lock (default 2s).
	LockTimeout time.Duration
	// MaxBatch bounds how many writes share one commit (default 256).
	MaxBatch int
}

// Store is the bbolt implementation of store.Store.
type Store struct {
	db  *bbolt.DB
	c   *committer
	hub *hub
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store file at path and upgrades its schema.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.LockTimeout,
		FreelistType: bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: open: %w", err)
	}
	if err := db.Update(migrate); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{db: db, c: newCommitter(db, opts.MaxBatch), hub: newHub()}, nil
}

// Close waits for pending writes, wakes every waiter and closes the file.
func (s *Store) Close() error {
	s.c.close()
	s.hub.closeAll()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// update runs fn in a group commit and returns once it is durable.
func (s *Store) update(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrap(op, s.c.do(fn))
}

// view runs fn in a read-only transaction.
func (s *Store) view(op string, fn func(tx *bbolt.Tx) error) error {
	return wrap(op, s.db.View(fn))
}

func wrap(op string, err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("bolt: %s: %w", op, err)
}

// accountBucket returns the account's bucket or ErrAccountNotFound.
func accountBucket(tx *bbolt.Tx, id store.AccountID) (*bbolt.Bucket, error) {
	if id == "" {
		return nil, store.ErrAccountNotFound
	}
	b := tx.Bucket(bucketAccounts).Bucket([]byte(id))
	if b == nil {
		return nil, store.ErrAccountNotFound
	}
	return b, nil
}

// loadAccount returns the account's bucket and decoded record.
func loadAccount(tx *bbolt.Tx, id store.AccountID) (*bbolt.Bucket, *account, error) {
	b, err := accountBucket(tx, id)
	if err != nil {
		return nil, nil, err
	}
	a, err := decodeAccount(id, b.Get(keyAccount))
	if err != nil {
		return nil, nil, err
	}
	return b, a, nil
}

func putAccount(b *bbolt.Bucket, a *account) error {
	return b.Put(keyAccount, encodeAccount(a))
}

func randomID(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf), nil
}
