package bolt

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
)

// TestBodyChunks round-trips bodies at every chunk boundary and checks that
// expunging the message leaves no chunk behind.
func TestBodyChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	defer s.Close()
	ctx := context.Background()
	a, err := s.CreateAccount(ctx, "chunks@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs int
	_ = s.db.View(func(tx *bbolt.Tx) error { cs = chunkSize(tx); return nil })
	sizes := []int{0, 1, cs - 1, cs, cs + 1, 2 * cs, 5*cs + 7, 1 << 20}
	var uids []uint32
	for i, n := range sizes {
		body := bytes.Repeat([]byte{byte('a' + i)}, n)
		if n > 0 {
			body[n-1] = '!' // a wrong tail or a lost last chunk shows
		}
		m, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: int64(n), HeaderBlob: []byte("h"), BodyBlob: body})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.BodyBlob(ctx, a.ID, m.ID)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("size %d: read back %d bytes, %v", n, len(got), err)
		}
		uids = append(uids, m.UID)
	}
	if _, err := s.Expunge(ctx, a.ID, "INBOX", uids); err != nil {
		t.Fatal(err)
	}
	if !accountBucketEmpty(t, s, a.ID, bucketChunks) {
		t.Fatal("a chunk survived expunge")
	}
}

// accountBucketEmpty reports whether the account's bucket name holds no key.
func accountBucketEmpty(t *testing.T, s *Store, id store.AccountID, name []byte) bool {
	t.Helper()
	empty := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, id)
		if err != nil {
			return err
		}
		k, _ := ab.Bucket(name).Cursor().First()
		empty = k == nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return empty
}

// TestSchema1Bodies writes a schema 1 file (whole bodies in bucketBodies, no
// chunk bucket), opens it with this code, and reads, adds and expunges mail.
func TestSchema1Bodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	ctx := context.Background()
	a, err := s.CreateAccount(ctx, "old@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	oldBody := bytes.Repeat([]byte("schema one body "), 1000)
	m, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: int64(len(oldBody)), HeaderBlob: []byte("h"), BodyBlob: oldBody})
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the file into the schema 1 layout.
	err = s.db.Update(func(tx *bbolt.Tx) error {
		ab, err := accountBucket(tx, a.ID)
		if err != nil {
			return err
		}
		blob, err := blobID(ab, m.ID)
		if err != nil {
			return err
		}
		if err := ab.Bucket(bucketBodies).Put(u64key(blob), oldBody); err != nil {
			return err
		}
		if err := ab.DeleteBucket(bucketChunks); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, u64key(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	got, err := s.BodyBlob(ctx, a.ID, m.ID)
	if err != nil || !bytes.Equal(got, oldBody) {
		t.Fatalf("schema 1 body after upgrade: %d bytes, %v", len(got), err)
	}
	newBody := bytes.Repeat([]byte("schema two body "), 1000)
	m2, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: int64(len(newBody)), HeaderBlob: []byte("h"), BodyBlob: newBody})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.BodyBlob(ctx, a.ID, m2.ID); err != nil || !bytes.Equal(got, newBody) {
		t.Fatalf("new body in an upgraded file: %d bytes, %v", len(got), err)
	}
	if _, err := s.Expunge(ctx, a.ID, "INBOX", []uint32{m.UID}); err != nil {
		t.Fatal(err)
	}
	if !accountBucketEmpty(t, s, a.ID, bucketBodies) {
		t.Fatal("the schema 1 body survived expunge")
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); be64(v) != schemaVersion {
			return errors.New("schema version not upgraded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
