package servertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestBoltTxID: the id read from the file's meta pages grows by one per
// commit, and a file that is not bbolt is refused.
func TestBoltTxID(t *testing.T) {
	st, path := OpenBoltPath(t)
	before, err := BoltTxID(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, addr := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		if _, err := st.CreateAccount(ctx, addr, 0); err != nil {
			t.Fatal(err)
		}
		got, err := BoltTxID(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != before+uint64(i)+1 {
			t.Fatalf("after %d commits the txid went from %d to %d", i+1, before, got)
		}
	}
	other := filepath.Join(t.TempDir(), "not-bolt")
	if err := os.WriteFile(other, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := BoltTxID(other); err == nil {
		t.Fatal("a zero-filled file was read as bbolt")
	}
	if _, err := BoltTxID(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing file gave a txid")
	}
}
