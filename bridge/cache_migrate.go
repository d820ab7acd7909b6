package bridge

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migrateSchema1 upgrades a schema 1 cache in place inside tx: every
// message record is split into its compact index record and its summary,
// which moves to the summaries bucket under the message id. Nothing is
// downloaded again and UIDs stay as they are. A record that does not open
// fails the migration; the caller then keeps the file aside and rebuilds.
func migrateSchema1(tx *bolt.Tx, s *sealer) error {
	c := &cache{s: s}
	all := tx.Bucket(bucketMessages)
	var boxes [][]byte
	if err := all.ForEachBucket(func(bk []byte) error {
		boxes = append(boxes, append([]byte(nil), bk...))
		return nil
	}); err != nil {
		return err
	}
	for _, bk := range boxes {
		b := all.Bucket(bk)
		type rec struct{ k, v []byte }
		var recs []rec
		err := b.ForEach(func(k, v []byte) error {
			p, err := s.open(v, aadFor(bucketMessages, bk, k))
			if err != nil {
				return err
			}
			e, err := decodeRecordV1(p)
			if err != nil {
				return err
			}
			if err := c.putSummary(tx, e.id, e.sum); err != nil {
				return err
			}
			recs = append(recs, rec{append([]byte(nil), k...), s.seal(encodeRecord(e), aadFor(bucketMessages, bk, k))})
			return nil
		})
		if err != nil {
			return fmt.Errorf("bridge: migrate cache: %w", err)
		}
		// Values are replaced after the walk: bbolt forbids changing a
		// bucket while iterating it.
		for _, r := range recs {
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchema, []byte(cacheSchema))
}
