package bolt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
	"smessenger/internal/store/storetest"
)

func open(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func newStore(t testing.TB) store.Store {
	s := open(t, filepath.Join(t.TempDir(), "store.db"))
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

func TestConcurrency(t *testing.T) {
	storetest.RunConcurrency(t, func(t *testing.T) store.Store { return newStore(t) })
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store { return newStore(b) })
}

// TestReopen checks that a committed message survives closing the file.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	s := open(t, path)
	a, err := s.CreateAccount(ctx, "reopen@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 3, HeaderBlob: []byte("h"), BodyBlob: []byte("body")})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s.LastEventSeq(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccount(ctx, a.ID); err == nil {
		t.Fatal("GetAccount after Close succeeded")
	}
	if _, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{}); err != ErrClosed {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}

	s = open(t, path)
	defer s.Close()
	got, err := s.GetMessage(ctx, a.ID, "INBOX", m.UID)
	if err != nil || got.ID != m.ID || got.ModSeq != m.ModSeq {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	body, err := s.BodyBlob(ctx, a.ID, m.ID)
	if err != nil || string(body) != "body" {
		t.Fatalf("body after reopen = %q, %v", body, err)
	}
	if n, _ := s.LastEventSeq(ctx, a.ID); n != seq {
		t.Fatalf("event log after reopen ends at %d, want %d", n, seq)
	}
	m2, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 1, BodyBlob: []byte("2")})
	if err != nil || m2.UID <= m.UID || m2.ID <= m.ID {
		t.Fatalf("append after reopen = %+v, %v", m2, err)
	}
}

// TestNoPlaintextMarkers checks the file holds the blobs we wrote and none
// of the connection details a careless store might add.
func TestNoPlaintextMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	s := open(t, path)
	a, err := s.CreateAccount(ctx, "privacy@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("OPAQUE-CIPHERTEXT-MARKER")
	if _, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 1, HeaderBlob: blob, BodyBlob: blob}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice(ctx, a.ID, bytes.Repeat([]byte{0x42}, 32), "laptop"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, blob) {
		t.Fatal("blob not found in the file: the scan below would prove nothing")
	}
	for _, marker := range []string{"127.0.0.1", "::1", "localhost", "RemoteAddr", "Received:"} {
		if bytes.Contains(raw, []byte(marker)) {
			t.Errorf("file contains %q", marker)
		}
	}
}

// TestSchemaNewer refuses a file written by a newer program.
func TestSchemaNewer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, u64key(schemaVersion+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(path, Options{}); err == nil {
		s2.Close()
		t.Fatal("Open accepted a newer schema")
	}
}
