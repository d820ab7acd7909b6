package bolt

import (
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout this code reads and writes.
const schemaVersion = 2

var keySchema = []byte("schema")

// migrations[v] upgrades a file from schema v to v+1 inside one transaction.
// Schema 1 is the first; later versions add an entry here, in its own file
// (migrate_v1.go, …), and never edit an old one.
var migrations = map[uint64]func(tx *bbolt.Tx) error{
	1: migrateV1ChunkedBodies,
}

// migrate creates the buckets of a new file and upgrades an old one. A file
// written by a newer version is refused rather than misread.
func migrate(tx *bbolt.Tx) error {
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bolt: create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := uint64(schemaVersion)
	if raw := meta.Get(keySchema); raw != nil {
		if len(raw) != 8 {
			return fmt.Errorf("bolt: corrupt schema version")
		}
		v = binary.BigEndian.Uint64(raw)
	}
	if v > schemaVersion {
		return fmt.Errorf("bolt: file has schema %d, this program knows up to %d", v, schemaVersion)
	}
	for ; v < schemaVersion; v++ {
		up, ok := migrations[v]
		if !ok {
			return fmt.Errorf("bolt: no migration from schema %d", v)
		}
		if err := up(tx); err != nil {
			return fmt.Errorf("bolt: migrate schema %d: %w", v, err)
		}
	}
	return meta.Put(keySchema, u64key(schemaVersion))
}
