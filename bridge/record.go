package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// errRecord is returned for a cache record that does not decode.
var errRecord = errors.New("bridge: malformed cache record")

// Record versions: the first byte of every message record. Version 1
// (cache schema 1) carried the summary after the flags; version 2 is the
// compact index record only, the summary living in its own bucket, so that
// opening the cache and changing flags never touch summaries.
const (
	recordVersion1 = 1
	recordVersion  = 2
)

// Limits on decoded records, so a damaged record cannot make us allocate
// without bound.
const (
	maxRecordFlags   = 1024
	maxRecordFlagLen = 1024
)

// recordFixed is the length of the fixed part of a record.
const recordFixed = 1 + 8 + 4 + 8 + 8 + 8 + 1

// entry is one message of the in-memory index and of the cache: a few dozen
// bytes, so the index of a large mailbox stays small. Flags are never
// modified in place once shared; updates replace them. sum is set only on
// entries on their way into the index (freshly opened or appended); index
// entries keep it nil and their summary lives in the cache and, while
// recently used, in the summary LRU (see summaries.go).
type entry struct {
	uid       uint32
	decrypted bool // the summary was computed from the final body (decrypted or placeholder)
	external  bool // the stored message arrived OpenPGP-encrypted from outside
	hasBody   bool // the body is in the cache (not stored in the record)
	id        store.MessageID
	flags     []string
	date      time.Time
	size      int64
	modseq    uint64
	sum       *pgp.Summary
}

// encodeRecord is the plaintext of a message's index record: a fixed
// header and the flags.
func encodeRecord(e *entry) []byte {
	b := make([]byte, 0, recordFixed+8+16*len(e.flags))
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
	return b
}

// decodeRecord parses an index record; it never panics on any input.
func decodeRecord(b []byte) (*entry, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, errRecord
	}
	e, rest, err := decodeRecordHead(b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errRecord)
	}
	return e, nil
}

// decodeRecordV1 parses a schema 1 record (index fields and summary) for
// the migration to schema 2.
func decodeRecordV1(b []byte) (*entry, error) {
	if len(b) == 0 || b[0] != recordVersion1 {
		return nil, errRecord
	}
	e, rest, err := decodeRecordHead(b)
	if err != nil {
		return nil, err
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%w: no summary", errRecord)
	}
	if e.sum, err = pgp.DecodeSummary(rest); err != nil {
		return nil, fmt.Errorf("%w: %v", errRecord, err)
	}
	return e, nil
}

// decodeRecordHead parses the fixed part and the flags of a record of
// either version and returns what follows them.
func decodeRecordHead(b []byte) (*entry, []byte, error) {
	if len(b) < recordFixed {
		return nil, nil, errRecord
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
		return nil, nil, errRecord
	}
	rest := b[recordFixed:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > maxRecordFlags {
		return nil, nil, errRecord
	}
	rest = rest[k:]
	var flags []string
	if n > 0 {
		flags = make([]string, 0, n)
	}
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > maxRecordFlagLen || l > uint64(len(rest)-k) {
			return nil, nil, errRecord
		}
		flags = append(flags, string(rest[k:k+int(l)]))
		rest = rest[k+int(l):]
	}
	e.flags = internFlags(flags)
	return e, rest, nil
}

// flagSets interns flag lists: most messages of a mailbox share one of a
// handful of sets (none, \Seen, \Seen \Answered …), so the index of 50,000
// messages holds a few slices instead of 50,000. Shared slices are safe
// because flags are never modified in place. The table is bounded; beyond
// it, lists are simply not shared.
var flagSets = struct {
	sync.Mutex
	m map[string][]string
}{m: map[string][]string{}}

const maxFlagSets = 4096

func internFlags(flags []string) []string {
	if len(flags) == 0 {
		return nil
	}
	key := strings.Join(flags, "\x00")
	flagSets.Lock()
	defer flagSets.Unlock()
	if s, ok := flagSets.m[key]; ok {
		return s
	}
	if len(flagSets.m) < maxFlagSets {
		flagSets.m[key] = flags
	}
	return flags
}
