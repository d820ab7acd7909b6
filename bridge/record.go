package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// errRecord is returned for a cache record that does not decode.
var errRecord = errors.New("bridge: malformed cache record")

// recordVersion is the first byte of every message record.
const recordVersion = 1

// Limits on decoded records, so a damaged record cannot make us allocate
// without bound.
const (
	maxRecordFlags   = 1024
	maxRecordFlagLen = 1024
)

// entry is one message of the in-memory index and of the cache. Flags and
// Summary are never modified in place once shared; updates replace them.
type entry struct {
	uid       uint32
	id        store.MessageID
	flags     []string
	date      time.Time
	size      int64
	modseq    uint64
	sum       *pgp.Summary
	decrypted bool // sum was computed from the final body (decrypted or placeholder)
	external  bool // the stored message arrived OpenPGP-encrypted from outside
	hasBody   bool // the body is in the cache (not stored in the record)
}

// encodeRecord is the plaintext of a message record: a fixed header, the
// flags and pgp's own summary encoding.
func encodeRecord(e *entry) []byte {
	var sum []byte
	if e.sum != nil {
		sum = pgp.EncodeSummary(e.sum)
	}
	b := make([]byte, 0, 64+len(sum))
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(e.id))
	b = binary.BigEndian.AppendUint32(b, e.uid)
	b = binary.BigEndian.AppendUint64(b, uint64(e.date.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.size))
	b = binary.BigEndian.AppendUint64(b, e.modseq)
	var fl byte
	if e.decrypted {
		fl |= 1
	}
	if e.external {
		fl |= 2
	}
	b = append(b, fl)
	b = binary.AppendUvarint(b, uint64(len(e.flags)))
	for _, f := range e.flags {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return append(b, sum...)
}

// decodeRecord parses a message record; it never panics on any input.
func decodeRecord(b []byte) (*entry, error) {
	const fixed = 1 + 8 + 4 + 8 + 8 + 8 + 1
	if len(b) < fixed || b[0] != recordVersion {
		return nil, errRecord
	}
	e := &entry{
		id:     store.MessageID(binary.BigEndian.Uint64(b[1:])),
		uid:    binary.BigEndian.Uint32(b[9:]),
		date:   time.Unix(0, int64(binary.BigEndian.Uint64(b[13:]))).UTC(),
		size:   int64(binary.BigEndian.Uint64(b[21:])),
		modseq: binary.BigEndian.Uint64(b[29:]),
	}
	e.decrypted = b[37]&1 != 0
	e.external = b[37]&2 != 0
	if e.size < 0 || e.uid == 0 {
		return nil, errRecord
	}
	rest := b[fixed:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > maxRecordFlags {
		return nil, errRecord
	}
	rest = rest[k:]
	if n > 0 {
		e.flags = make([]string, 0, n)
	}
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > maxRecordFlagLen || l > uint64(len(rest)-k) {
			return nil, errRecord
		}
		e.flags = append(e.flags, string(rest[k:k+int(l)]))
		rest = rest[k+int(l):]
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%w: no summary", errRecord)
	}
	sum, err := pgp.DecodeSummary(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRecord, err)
	}
	e.sum = sum
	return e, nil
}
