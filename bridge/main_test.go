package bridge

import (
	"os"
	"testing"
)

// TestMain lowers the vault's key derivation cost: the parameters are
// stored per vault, so tests exercise the same code with cheaper numbers.
func TestMain(m *testing.M) {
	defaultKDF = kdfParams{Time: 1, Memory: 8 * 1024, Threads: 1}
	os.Exit(m.Run())
}
