package bridge

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// The cache's bbolt layout. Keys are numbers only (mailbox ids, UIDs,
// message ids); every value is sealed with the cache key and an AAD naming
// its bucket and key, so a record cannot be moved to another place unnoticed.
var (
	bucketMeta      = []byte("meta")
	bucketMailboxes = []byte("mailboxes")  // mailbox id → store.Mailbox
	bucketMessages  = []byte("messages")   // mailbox id → (uid → record)
	bucketBodies    = []byte("bodies")     // message id → decrypted message, or a chunk manifest (bodystore.go)
	bucketChunks    = []byte("bodychunks") // message id ‖ chunk number → part of a large body
	bucketSummaries = []byte("summaries")  // message id → pgp.EncodeSummary (schema 2)

	keySchema    = []byte("schema") // plaintext schema version
	keyCheck     = []byte("check")  // sealed known value: proves the cache key
	keySeq       = []byte("seq")    // sealed last applied event Seq
	keyAddresses = []byte("addresses")
)

// cacheSchema is the version of the layout above. Schema 1 kept each
// summary inside its message record; cache_migrate.go upgrades it in place.
const cacheSchema = "2"

const cacheCheckValue = "smessenger bridge cache"

// cacheName is the cache's file name inside the data folder.
const cacheName = "cache.db"

// errCacheKey: the cache was written with another key (e.g. a new login).
var errCacheKey = errors.New("bridge: cache key does not match")

// cache is the local encrypted store of the account's mailboxes.
type cache struct {
	db *bolt.DB
	s  *sealer
	// mapped counts body bytes read or written since the file mapping's
	// resident pages were last dropped (see trimMapping).
	mapped atomic.Int64
}

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func u32key(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func aadFor(bucket, sub, key []byte) []byte {
	a := make([]byte, 0, len(bucket)+len(sub)+len(key)+2)
	a = append(a, bucket...)
	a = append(a, '/')
	a = append(a, sub...)
	a = append(a, '/')
	return append(a, key...)
}

// openCache opens the cache at path. A file that is not a valid bbolt
// database, has an unknown schema, or was sealed with another key is moved
// aside (renamed, never deleted) and a fresh cache is created; log says so.
func openCache(path string, key []byte, log *slog.Logger) (*cache, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	c, err := tryOpenCache(path, s)
	if err == nil {
		return c, nil
	}
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bridge: cache is in use by another bridge process: %w", err)
	}
	aside := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405.000"))
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("bridge: cache damaged (%v) and cannot be moved aside: %w", err, rerr)
	}
	log.Warn("bridge: local cache damaged; kept it aside and rebuilding a new one from the server",
		"reason", err.Error(), "kept", aside)
	return tryOpenCache(path, s)
}

func tryOpenCache(path string, s *sealer) (c *cache, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, err
	}
	// The cache is a copy of server state keyed by the event Seq stored in
	// the same transaction as each change, so a lost tail after a power cut
	// is simply replayed; per-commit fsync is not worth its cost here. We
	// Sync explicitly after a first sync and on Close.
	db.NoSync = true
	c = &cache{db: db, s: s}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketMailboxes, bucketMessages, bucketBodies, bucketChunks, bucketSummaries} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keySchema)
		if v == nil {
			if err := meta.Put(keySchema, []byte(cacheSchema)); err != nil {
				return err
			}
			return meta.Put(keyCheck, s.seal([]byte(cacheCheckValue), aadFor(bucketMeta, nil, keyCheck)))
		}
		if string(v) != cacheSchema && string(v) != "1" {
			return fmt.Errorf("bridge: cache schema %q unknown", v)
		}
		got, err := s.open(meta.Get(keyCheck), aadFor(bucketMeta, nil, keyCheck))
		if err != nil || string(got) != cacheCheckValue {
			return errCacheKey
		}
		if string(v) == "1" {
			return migrateSchema1(tx, s)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cache) close() error {
	serr := c.db.Sync()
	if err := c.db.Close(); err != nil {
		return err
	}
	return serr
}

func (c *cache) sync() error { return c.db.Sync() }

// loaded is the cache's content at start.
type loaded struct {
	seq       uint64
	addresses []string
	boxes     map[uint64]*mbox
	bodies    map[store.MessageID]bool
}

// load reads the compact index into memory: mailboxes and message records,
// not summaries nor bodies (only which bodies are cached). A record that fails to
// open or decode is reported: the caller treats the cache as damaged.
func (c *cache) load() (*loaded, error) {
	l := &loaded{boxes: map[uint64]*mbox{}, bodies: map[store.MessageID]bool{}}
	err := c.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySeq); v != nil {
			p, err := c.s.open(v, aadFor(bucketMeta, nil, keySeq))
			if err != nil || len(p) != 8 {
				return fmt.Errorf("bridge: cache seq: %w", errRecord)
			}
			l.seq = binary.BigEndian.Uint64(p)
		}
		if v := meta.Get(keyAddresses); v != nil {
			if p, err := c.s.open(v, aadFor(bucketMeta, nil, keyAddresses)); err == nil {
				_ = json.Unmarshal(p, &l.addresses)
			}
		}
		err := tx.Bucket(bucketMailboxes).ForEach(func(k, v []byte) error {
			p, err := c.s.open(v, aadFor(bucketMailboxes, nil, k))
			if err != nil {
				return err
			}
			var mb store.Mailbox
			if err := json.Unmarshal(p, &mb); err != nil || len(k) != 8 || mb.ID != binary.BigEndian.Uint64(k) {
				return fmt.Errorf("bridge: cache mailbox: %w", errRecord)
			}
			l.boxes[mb.ID] = &mbox{info: mb}
			return nil
		})
		if err != nil {
			return err
		}
		if err := c.loadMessages(tx, l); err != nil {
			return err
		}
		return tx.Bucket(bucketBodies).ForEach(func(k, _ []byte) error {
			if len(k) == 8 {
				l.bodies[store.MessageID(binary.BigEndian.Uint64(k))] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, b := range l.boxes {
		for _, e := range b.msgs {
			e.hasBody = l.bodies[e.id]
		}
	}
	return l, nil
}

func (c *cache) loadMessages(tx *bolt.Tx, l *loaded) error {
	all := tx.Bucket(bucketMessages)
	return all.ForEachBucket(func(bk []byte) error {
		if len(bk) != 8 {
			return errRecord
		}
		b := l.boxes[binary.BigEndian.Uint64(bk)]
		if b == nil {
			return nil // an orphan left by a crash between two writes; ignored
		}
		return all.Bucket(bk).ForEach(func(k, v []byte) error {
			p, err := c.s.open(v, aadFor(bucketMessages, bk, k))
			if err != nil {
				return err
			}
			e, err := decodeRecord(p)
			if err != nil {
				return err
			}
			b.msgs = append(b.msgs, e) // keys iterate in UID order
			return nil
		})
	})
}

func (c *cache) putSeq(tx *bolt.Tx, seq uint64) error {
	return tx.Bucket(bucketMeta).Put(keySeq, c.s.seal(u64key(seq), aadFor(bucketMeta, nil, keySeq)))
}

func (c *cache) putAddresses(tx *bolt.Tx, addrs []string) error {
	p, _ := json.Marshal(addrs)
	return tx.Bucket(bucketMeta).Put(keyAddresses, c.s.seal(p, aadFor(bucketMeta, nil, keyAddresses)))
}

func (c *cache) putMailbox(tx *bolt.Tx, mb store.Mailbox) error {
	p, err := json.Marshal(mb)
	if err != nil {
		return err
	}
	k := u64key(mb.ID)
	if _, err := tx.Bucket(bucketMessages).CreateBucketIfNotExists(k); err != nil {
		return err
	}
	return tx.Bucket(bucketMailboxes).Put(k, c.s.seal(p, aadFor(bucketMailboxes, nil, k)))
}

func (c *cache) deleteMailbox(tx *bolt.Tx, id uint64) error {
	k := u64key(id)
	if err := tx.Bucket(bucketMailboxes).Delete(k); err != nil {
		return err
	}
	if err := tx.Bucket(bucketMessages).DeleteBucket(k); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return err
	}
	return nil
}

func (c *cache) putMessage(tx *bolt.Tx, mbID uint64, e *entry) error {
	bk := u64key(mbID)
	b, err := tx.Bucket(bucketMessages).CreateBucketIfNotExists(bk)
	if err != nil {
		return err
	}
	k := u32key(e.uid)
	b.FillPercent = denseFill
	return b.Put(k, c.s.seal(encodeRecord(e), aadFor(bucketMessages, bk, k)))
}

func (c *cache) deleteMessage(tx *bolt.Tx, mbID uint64, uid uint32) error {
	if b := tx.Bucket(bucketMessages).Bucket(u64key(mbID)); b != nil {
		return b.Delete(u32key(uid))
	}
	return nil
}

// denseFill is the page fill of the message and summary buckets. Their
// keys (UIDs, message ids) grow, so nearly every insert goes at the end, and
// bbolt's default of half-full pages would double the file and the pages a
// listing maps into memory.
const denseFill = 0.9

func (c *cache) putSummary(tx *bolt.Tx, id store.MessageID, sum *pgp.Summary) error {
	k := u64key(uint64(id))
	b := tx.Bucket(bucketSummaries)
	b.FillPercent = denseFill
	return b.Put(k, c.s.seal(pgp.EncodeSummary(sum), aadFor(bucketSummaries, nil, k)))
}

func (c *cache) deleteSummary(tx *bolt.Tx, id store.MessageID) error {
	return tx.Bucket(bucketSummaries).Delete(u64key(uint64(id)))
}

// summaryIn reads and decodes one summary from the summaries bucket b:
// nil and no error when it is not stored.
func (c *cache) summaryIn(b *bolt.Bucket, id store.MessageID) (*pgp.Summary, error) {
	k := u64key(uint64(id))
	v := b.Get(k)
	if v == nil {
		return nil, nil
	}
	p, err := c.s.open(v, aadFor(bucketSummaries, nil, k))
	if err != nil {
		return nil, err
	}
	sum, err := pgp.DecodeSummary(p)
	if err != nil {
		return nil, fmt.Errorf("%w: summary: %v", errRecord, err)
	}
	return sum, nil
}

// summaries reads the summaries of ids in one read transaction (so a
// listing of thousands costs one bbolt View), decrypting and decoding on
// all cores when there are many. out[i] is nil for a summary that is
// missing or unreadable; errs counts those that failed to open.
func (c *cache) summaries(ids []store.MessageID) (out []*pgp.Summary, failed int, err error) {
	out = make([]*pgp.Summary, len(ids))
	var bad atomic.Int64
	err = c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSummaries)
		work := func(lo, hi int) {
			for i := lo; i < hi; i++ {
				s, err := c.summaryIn(b, ids[i])
				if err != nil {
					bad.Add(1)
				}
				out[i] = s
			}
		}
		workers := runtime.GOMAXPROCS(0)
		if len(ids) < 256 || workers < 2 {
			work(0, len(ids))
			return nil
		}
		// A read-only transaction's buckets are only read (Get makes its
		// own cursor), so the goroutines can share it.
		var wg sync.WaitGroup
		per := (len(ids) + workers - 1) / workers
		for lo := 0; lo < len(ids); lo += per {
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				work(lo, hi)
			}(lo, min(lo+per, len(ids)))
		}
		wg.Wait()
		return nil
	})
	return out, int(bad.Load()), err
}
