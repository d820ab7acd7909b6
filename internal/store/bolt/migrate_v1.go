package bolt

import (
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// migrateV1ChunkedBodies upgrades schema 1 to 2: every account gets the
// chunk bucket that new bodies are written to (bodies.go). Old bodies stay
// where they are and are read from there, so the upgrade is quick however
// much mail the file holds.
func migrateV1ChunkedBodies(tx *bbolt.Tx) error {
	accts := tx.Bucket(bucketAccounts)
	return accts.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil // not a nested bucket
		}
		if _, err := accts.Bucket(k).CreateBucketIfNotExists(bucketChunks); err != nil {
			return fmt.Errorf("account %s: %w", k, err)
		}
		return nil
	})
}
