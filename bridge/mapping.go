package bridge

import bolt "go.etcd.io/bbolt"

// trimEvery is how many body bytes may pass through the cache between two
// drops of the file mapping's resident pages.
const trimEvery = 16 << 20

// noteMapped records n body bytes read from or written to the cache and,
// every trimEvery bytes, drops the resident pages of bbolt's file mapping.
// tx is the caller's open transaction, or nil.
//
// Why: bbolt reads through a shared read-only mmap of the whole file. Every
// body page read (and every neighbour a write rewrites) stays mapped, and
// Linux counts those pages in the process's RSS (RssFile) until memory runs
// short: a full download of a mailbox made the bridge's RSS grow by the
// cache's size. The pages are clean and stay in the page cache, so dropping
// the mapping only costs a minor fault on the next access.
func (c *cache) noteMapped(tx *bolt.Tx, n int) {
	if c.mapped.Add(int64(n)) < trimEvery {
		return
	}
	c.mapped.Store(0)
	if tx != nil {
		c.trimMapping(tx)
		return
	}
	// A read transaction holds bbolt's mmap lock, so the mapping cannot be
	// replaced while it is advised.
	_ = c.db.View(func(tx *bolt.Tx) error {
		c.trimMapping(tx)
		return nil
	})
}

// trimMapping drops the resident pages of the mapping up to the end of the
// data tx sees. The caller's transaction keeps the mapping in place: a
// read transaction holds the mmap lock, and only the writer remaps.
func (c *cache) trimMapping(tx *bolt.Tx) {
	dropResident(c.db.Info().Data, tx.Size())
}
