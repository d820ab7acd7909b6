package bolt

import (
	"bytes"
	"encoding/binary"
	"slices"

	bbolt "go.etcd.io/bbolt"
)

// Body blobs are stored as chunks, two to a page, keyed by blob id and
// chunk index.
//
// Why: bbolt keeps a large value inline in its leaf, and a leaf holds at
// least two values (MinKeysPerPage), so 10 KB bodies made six-page leaves.
// Appending the next blob loads the last leaf of the bucket into a node,
// and the commit writes that whole node again: every append rewrote the
// previous bodies as well as its own, and each multi-page node is a fresh
// allocation (single pages come from bbolt's pool). With chunks that fill
// a page in pairs, an append dirties at most one old page, the tail of the
// previous body.
//
// Schema 1 files hold whole bodies in bucketBodies; those are still read
// and deleted there, so an upgraded file needs no rewrite.

// chunkSize lets two chunks fill one page of the file exactly (its page
// size is fixed when the file is made): the page header (16 bytes), then
// per chunk a leaf element (16) and its 12-byte key.
func chunkSize(tx *bbolt.Tx) int {
	return max((tx.DB().Info().PageSize-16)/2-16-12, 1024)
}

func chunkKey(blob uint64, i uint32) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 12), blob)
	return binary.BigEndian.AppendUint32(k, i)
}

// putBody writes body as chunks of blob. An empty body is one empty chunk,
// so that every stored body has at least one key.
func putBody(cb *bbolt.Bucket, blob uint64, body []byte) error {
	cb.FillPercent = 1 // keys only grow; two chunks fill a page
	size := chunkSize(cb.Tx())
	for i := uint32(0); ; i++ {
		n := min(len(body), size)
		if err := cb.Put(chunkKey(blob, i), body[:n]); err != nil {
			return err
		}
		body = body[n:]
		if len(body) == 0 {
			return nil
		}
	}
}

// getBody returns a copy of blob's body, from its chunks or, in a schema 1
// file, from bucketBodies; nil when there is none.
func getBody(ab *bbolt.Bucket, blob uint64) []byte {
	if old := ab.Bucket(bucketBodies); old != nil {
		if v := old.Get(u64key(blob)); v != nil {
			return slices.Clone(v)
		}
	}
	prefix := u64key(blob)
	c := ab.Bucket(bucketChunks).Cursor()
	var out []byte
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if out == nil {
			n := len(v) // a short first chunk is the whole body
			if n >= 1024 {
				n *= 4 // a full one: room for a few more
			}
			out = make([]byte, 0, n)
		}
		out = append(out, v...)
	}
	return out
}

// deleteBody removes blob's body in either layout.
func deleteBody(ab *bbolt.Bucket, blob uint64) error {
	if old := ab.Bucket(bucketBodies); old != nil {
		if err := old.Delete(u64key(blob)); err != nil {
			return err
		}
	}
	prefix := u64key(blob)
	c := ab.Bucket(bucketChunks).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
