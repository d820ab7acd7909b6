package servertest

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// bbolt's on-disk meta page: a 16-byte page header, then magic, version,
// page size and flags (4 bytes each), the root bucket (16), the freelist
// and high-water page ids (8 each), and the transaction id.
const (
	boltMagic      = 0xED0CDAED
	boltMetaMagic  = 16
	boltMetaPgSize = 16 + 8
	boltMetaTxID   = 16 + 16 + 16 + 16
)

// BoltTxID returns the id of the last committed transaction of the bbolt
// file at path: it grows by one per commit, so the difference over a
// benchmark is the number of commits (and fsync pairs) it cost, read from
// the outside without any hook in the store. The file may be open.
func BoltTxID(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("servertest: bolt meta: %w", err)
	}
	defer f.Close()
	first := make([]byte, 4096)
	if _, err := io.ReadFull(f, first); err != nil {
		return 0, fmt.Errorf("servertest: bolt meta: %w", err)
	}
	if binary.LittleEndian.Uint32(first[boltMetaMagic:]) != boltMagic {
		return 0, fmt.Errorf("servertest: %s is not a bbolt file", path)
	}
	pg := int64(binary.LittleEndian.Uint32(first[boltMetaPgSize:]))
	second := make([]byte, boltMetaTxID+8)
	if _, err := f.ReadAt(second, pg); err != nil {
		return 0, fmt.Errorf("servertest: bolt meta: %w", err)
	}
	return max(binary.LittleEndian.Uint64(first[boltMetaTxID:]), binary.LittleEndian.Uint64(second[boltMetaTxID:])), nil
}
