package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// Bodies are kept in the cache in pieces of at most bodyChunk bytes. A body
// that fits in one is one sealed value in the bodies bucket, as it always
// was. A larger one is a sealed manifest there (its chunk count, total size
// and a random generation) and its chunks in the bodychunks bucket, each
// sealed with an AAD that names the generation and count, so chunks of two
// writes of the same body, or a truncated set, do not open.
//
// Why: bbolt keeps a value inline in its leaf page and rewrites the whole
// leaf, neighbours included, on every insert next to it; a tree of
// multi-megabyte values made every body write copy several of them (heap
// and mapped file pages alike). With bounded values, a write costs about
// its own size, and a read decrypts the chunks straight into one buffer of
// the body's size.
const bodyChunk = 64 << 10

// manifestLen is the plaintext size of a chunk manifest: count, size and
// generation.
const manifestLen = 4 + 8 + 8

// manifestSub is the AAD part that tells a manifest from a one-piece body
// of the same length.
var manifestSub = []byte("chunked")

func chunkKey(id store.MessageID, n uint32) []byte {
	return binary.BigEndian.AppendUint32(u64key(uint64(id)), n)
}

// putBody stores body under id, replacing what was there.
func (c *cache) putBody(tx *bolt.Tx, id store.MessageID, body []byte) error {
	defer c.noteMapped(tx, len(body))
	if err := c.deleteChunks(tx, id); err != nil {
		return err
	}
	k := u64key(uint64(id))
	if len(body) <= bodyChunk {
		return tx.Bucket(bucketBodies).Put(k, c.s.seal(body, aadFor(bucketBodies, nil, k)))
	}
	count := uint32((len(body) + bodyChunk - 1) / bodyChunk)
	gen := randomBytes(8)
	sub := chunkSub(gen, count)
	chunks := tx.Bucket(bucketChunks)
	for n := uint32(0); n < count; n++ {
		part := body[int(n)*bodyChunk : min(len(body), int(n+1)*bodyChunk)]
		ck := chunkKey(id, n)
		if err := chunks.Put(ck, c.s.seal(part, aadFor(bucketChunks, sub, ck))); err != nil {
			return err
		}
	}
	m := binary.BigEndian.AppendUint32(nil, count)
	m = binary.BigEndian.AppendUint64(m, uint64(len(body)))
	m = append(m, gen...)
	return tx.Bucket(bucketBodies).Put(k, c.s.seal(m, aadFor(bucketBodies, manifestSub, k)))
}

// chunkSub is the AAD part of every chunk of one write: generation and
// count.
func chunkSub(gen []byte, count uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), gen...), count)
}

// getBody returns a cached decrypted body, or nil if it is not cached. A
// body stored in chunks is opened into a single buffer of its size.
func (c *cache) getBody(id store.MessageID) ([]byte, error) {
	var out []byte
	err := c.db.View(func(tx *bolt.Tx) error {
		k := u64key(uint64(id))
		v := tx.Bucket(bucketBodies).Get(k)
		if v == nil {
			return nil
		}
		if len(v) == manifestLen+sealOverhead {
			if m, err := c.s.open(v, aadFor(bucketBodies, manifestSub, k)); err == nil {
				body, err := c.getChunks(tx, id, m)
				out = body
				return err
			}
		}
		p, err := c.s.open(v, aadFor(bucketBodies, nil, k))
		if err != nil {
			return err
		}
		out = p
		return nil
	})
	if out != nil {
		c.noteMapped(nil, len(out))
	}
	return out, err
}

// getChunks reads the chunks a manifest m names.
func (c *cache) getChunks(tx *bolt.Tx, id store.MessageID, m []byte) ([]byte, error) {
	count := binary.BigEndian.Uint32(m)
	size := binary.BigEndian.Uint64(m[4:])
	// A manifest that opened was written by us; these checks only keep a
	// bug from turning into a huge allocation.
	if count == 0 || size > maxBodyBlob || uint64(count) != (size+bodyChunk-1)/bodyChunk {
		return nil, fmt.Errorf("bridge: cached body manifest: %w", errRecord)
	}
	sub := chunkSub(m[12:], count)
	chunks := tx.Bucket(bucketChunks)
	out := make([]byte, 0, size)
	for n := uint32(0); n < count; n++ {
		ck := chunkKey(id, n)
		v := chunks.Get(ck)
		if v == nil || uint64(len(out))+uint64(len(v)-min(len(v), sealOverhead)) > size {
			return nil, fmt.Errorf("bridge: cached body chunk %d of %d: %w", n, count, errRecord)
		}
		var err error
		if out, err = c.s.openAppend(out, v, aadFor(bucketChunks, sub, ck)); err != nil {
			return nil, err
		}
	}
	if uint64(len(out)) != size {
		return nil, fmt.Errorf("bridge: cached body is %d bytes, its manifest says %d: %w", len(out), size, errRecord)
	}
	return out, nil
}

// deleteBody removes id's body, in one piece or in chunks.
func (c *cache) deleteBody(tx *bolt.Tx, id store.MessageID) error {
	if err := c.deleteChunks(tx, id); err != nil {
		return err
	}
	return tx.Bucket(bucketBodies).Delete(u64key(uint64(id)))
}

// deleteChunks removes every chunk of id, whatever the manifest says, so
// nothing is left behind by an interrupted or damaged write.
func (c *cache) deleteChunks(tx *bolt.Tx, id store.MessageID) error {
	prefix := u64key(uint64(id))
	cur := tx.Bucket(bucketChunks).Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Seek(prefix) {
		if err := cur.Delete(); err != nil {
			return err
		}
	}
	return nil
}
