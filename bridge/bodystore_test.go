package bridge

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

func newTestCache(t *testing.T) *cache {
	t.Helper()
	c, err := openCache(filepath.Join(t.TempDir(), cacheName), bytes.Repeat([]byte{5}, 32), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	return c
}

func randomBody(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func (c *cache) put(t *testing.T, id store.MessageID, body []byte) {
	t.Helper()
	if err := c.db.Update(func(tx *bolt.Tx) error { return c.putBody(tx, id, body) }); err != nil {
		t.Fatal(err)
	}
}

// chunkKeys counts the chunk records of id.
func (c *cache) chunkKeys(t *testing.T, id store.MessageID) int {
	t.Helper()
	n := 0
	err := c.db.View(func(tx *bolt.Tx) error {
		prefix := u64key(uint64(id))
		cur := tx.Bucket(bucketChunks).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBodyChunks: bodies of every size around the chunk size come back
// byte for byte; a large body is stored in chunks, one replaced by a
// smaller one or deleted leaves no chunk behind, and a body of the old
// one-piece layout of any size still reads.
func TestBodyChunks(t *testing.T) {
	c := newTestCache(t)
	sizes := []int{0, 1, bodyChunk - 1, bodyChunk, bodyChunk + 1, 3*bodyChunk + 5, 1 << 20}
	for i, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			id := store.MessageID(i + 1)
			body := randomBody(uint64(n), n)
			c.put(t, id, body)
			got, err := c.getBody(id)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes, %v; want %d", len(got), err, n)
			}
			if cap(got) != len(got) {
				t.Errorf("buffer of %d bytes for a body of %d", cap(got), len(got))
			}
			want := 0
			if n > bodyChunk {
				want = (n + bodyChunk - 1) / bodyChunk
			}
			if k := c.chunkKeys(t, id); k != want {
				t.Errorf("%d chunks, want %d", k, want)
			}
		})
	}
	big, small := store.MessageID(100), []byte("Subject: small\r\n\r\nnow\r\n")
	c.put(t, big, randomBody(9, 5*bodyChunk))
	c.put(t, big, small)
	if got, err := c.getBody(big); err != nil || !bytes.Equal(got, small) || c.chunkKeys(t, big) != 0 {
		t.Fatalf("replaced by a small body: %q %v, %d chunks left", got, err, c.chunkKeys(t, big))
	}
	c.put(t, big, randomBody(10, 2*bodyChunk+1))
	if err := c.db.Update(func(tx *bolt.Tx) error { return c.deleteBody(tx, big) }); err != nil {
		t.Fatal(err)
	}
	if got, err := c.getBody(big); got != nil || err != nil || c.chunkKeys(t, big) != 0 {
		t.Fatalf("deleted body: %d bytes, %v, %d chunks", len(got), err, c.chunkKeys(t, big))
	}
	// The layout before chunks: one sealed value however large.
	old := randomBody(11, 3*bodyChunk)
	err := c.db.Update(func(tx *bolt.Tx) error {
		k := u64key(200)
		return tx.Bucket(bucketBodies).Put(k, c.s.seal(old, aadFor(bucketBodies, nil, k)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.getBody(200); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("one-piece body: %d bytes, %v", len(got), err)
	}
}

// TestBodyChunksTampered: a missing chunk, a chunk moved from another
// body or from an earlier write of the same body, and a manifest moved to
// another id all fail to read with an error, never a wrong body.
func TestBodyChunksTampered(t *testing.T) {
	c := newTestCache(t)
	a, b := randomBody(1, 3*bodyChunk), randomBody(2, 3*bodyChunk)
	c.put(t, 1, a)
	c.put(t, 2, b)
	edit := func(fn func(tx *bolt.Tx) error) {
		t.Helper()
		if err := c.db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	// A chunk of body 2 in place of one of body 1.
	edit(func(tx *bolt.Tx) error {
		ch := tx.Bucket(bucketChunks)
		return ch.Put(chunkKey(1, 1), bytes.Clone(ch.Get(chunkKey(2, 1))))
	})
	if got, err := c.getBody(1); !errors.Is(err, errOpen) || got != nil {
		t.Errorf("foreign chunk: %d bytes, %v", len(got), err)
	}
	// A chunk of an earlier write of the same body.
	before := c.chunkValue(t, 2, 0)
	c.put(t, 2, b)
	edit(func(tx *bolt.Tx) error { return tx.Bucket(bucketChunks).Put(chunkKey(2, 0), before) })
	if got, err := c.getBody(2); !errors.Is(err, errOpen) || got != nil {
		t.Errorf("stale chunk: %d bytes, %v", len(got), err)
	}
	// A missing chunk.
	c.put(t, 2, b)
	edit(func(tx *bolt.Tx) error { return tx.Bucket(bucketChunks).Delete(chunkKey(2, 2)) })
	if got, err := c.getBody(2); !errors.Is(err, errRecord) || got != nil {
		t.Errorf("missing chunk: %d bytes, %v", len(got), err)
	}
	// A manifest moved to another id does not open as a manifest there,
	// nor as a body.
	c.put(t, 2, b)
	edit(func(tx *bolt.Tx) error {
		bb := tx.Bucket(bucketBodies)
		return bb.Put(u64key(3), bytes.Clone(bb.Get(u64key(2))))
	})
	if got, err := c.getBody(3); !errors.Is(err, errOpen) || got != nil {
		t.Errorf("moved manifest: %d bytes, %v", len(got), err)
	}
	if got, err := c.getBody(2); err != nil || !bytes.Equal(got, b) {
		t.Errorf("intact body: %d bytes, %v", len(got), err)
	}
}

func (c *cache) chunkValue(t *testing.T, id store.MessageID, n uint32) []byte {
	t.Helper()
	var v []byte
	if err := c.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucketChunks).Get(chunkKey(id, n)))
		return nil
	}); err != nil || v == nil {
		t.Fatalf("chunk %d of %d: %v", n, id, err)
	}
	return v
}

// mappedCacheRss is the resident size of this process's mappings of path
// (Linux /proc/self/smaps), in bytes.
func mappedCacheRss(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	var sum int64
	in := false
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-"):
			in = len(f) == 6 && f[5] == path
		case in && len(f) == 3 && f[0] == "Rss:":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n << 10
		}
	}
	return sum
}

// TestCacheMappingTrimmed: reading back 48 MiB of bodies does not leave
// them in the process's RSS through bbolt's file mapping.
func TestCacheMappingTrimmed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("RssFile accounting is Linux's")
	}
	c := newTestCache(t)
	const n, size = 48, 1 << 20
	body := randomBody(3, size)
	if err := c.db.Update(func(tx *bolt.Tx) error {
		for id := store.MessageID(1); id <= n; id++ {
			if err := c.putBody(tx, id, body); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var peak int64
	for id := store.MessageID(1); id <= n; id++ {
		got, err := c.getBody(id)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("body %d: %d bytes, %v", id, len(got), err)
		}
		peak = max(peak, mappedCacheRss(t, c.db.Path()))
	}
	// Without the trim every page read stays mapped: about n MiB.
	if limit := int64(trimEvery + 8<<20); peak > limit || peak == 0 {
		t.Errorf("the cache mapping reached %d MiB resident (limit %d MiB)", peak>>20, limit>>20)
	}
}

// TestBodyLRUAdmission: a body is kept from its second put on; a scan of
// many bodies, each put once, leaves the LRU empty; the budget holds.
func TestBodyLRUAdmission(t *testing.T) {
	l := newBodyLRU(1 << 20)
	body := make([]byte, 100<<10)
	l.put(1, body)
	if l.get(1) != nil {
		t.Fatal("kept on first put")
	}
	l.put(1, body)
	if l.get(1) == nil {
		t.Fatal("not kept on second put")
	}
	for id := store.MessageID(2); id < 5000; id++ {
		l.put(id, body)
	}
	if l.order.Len() != 1 || l.used != held(body) || len(l.ghost.in) != ghostLen {
		t.Fatalf("after a scan: %d kept, %d bytes, %d remembered", l.order.Len(), l.used, len(l.ghost.in))
	}
	for round := 0; round < 2; round++ {
		for id := store.MessageID(10000); id < 10020; id++ {
			l.put(id, body)
		}
	}
	if l.used > l.max || l.order.Len() != 10 {
		t.Fatalf("%d kept, %d of %d bytes", l.order.Len(), l.used, l.max)
	}
	// Capacity counts, not length.
	l = newBodyLRU(1 << 20)
	wide := make([]byte, 10, 300<<10)
	l.put(7, wide)
	l.put(7, wide)
	if l.get(7) != nil {
		t.Fatal("kept a body whose buffer exceeds a quarter of the budget")
	}
}

// FuzzReadBlob: readBlob returns exactly the first limit bytes of what it
// reads, whatever the size hint and however the reader splits its data.
func FuzzReadBlob(f *testing.F) {
	f.Add([]byte("hello"), int64(0), int64(10), uint8(1))
	f.Add(bytes.Repeat([]byte("x"), 70000), int64(100), int64(80000), uint8(7))
	f.Add(bytes.Repeat([]byte("y"), 5000), int64(1<<30), int64(4097), uint8(200))
	f.Add([]byte{}, int64(-5), int64(1), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, hint, limit int64, step uint8) {
		if limit <= 0 || limit > 1<<20 {
			return
		}
		r := &stepReader{data: data, step: int(step)%97 + 1}
		got, err := readBlob(r, hint, limit)
		want := data[:min(int64(len(data)), limit)]
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, %v; want %d", len(got), err, len(want))
		}
	})
}

// stepReader hands out data a few bytes at a time.
type stepReader struct {
	data []byte
	step int
}

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.data)
	r.data = r.data[n:]
	return n, nil
}
