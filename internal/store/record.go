package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrCorrupt reports a stored record that cannot be decoded.
var ErrCorrupt = errors.New("store: corrupt record")

// maxRecordItems bounds a decoded slice length so a corrupt length prefix
// cannot make a decoder allocate without limit.
const maxRecordItems = 1 << 20

// RecordWriter builds a deterministic binary record: unsigned and signed
// varints, length-prefixed bytes and strings, and times as Unix nanoseconds.
// Backends use it for versioned records whose first byte is the version.
type RecordWriter struct{ buf []byte }

// NewRecordWriter starts a record with the given version byte.
func NewRecordWriter(version byte, sizeHint int) *RecordWriter {
	w := &RecordWriter{buf: make([]byte, 0, sizeHint+1)}
	w.buf = append(w.buf, version)
	return w
}

// Bytes returns the encoded record.
func (w *RecordWriter) Bytes() []byte { return w.buf }

// Uint appends an unsigned varint.
func (w *RecordWriter) Uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Int appends a signed varint.
func (w *RecordWriter) Int(v int64) { w.buf = binary.AppendVarint(w.buf, v) }

// Bool appends one byte, 0 or 1.
func (w *RecordWriter) Bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Blob appends a length-prefixed byte string.
func (w *RecordWriter) Blob(b []byte) {
	w.Uint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// String appends a length-prefixed string.
func (w *RecordWriter) String(s string) {
	w.Uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Strings appends a count and then each string.
func (w *RecordWriter) Strings(ss []string) {
	w.Uint(uint64(len(ss)))
	for _, s := range ss {
		w.String(s)
	}
}

// Time appends t as Unix nanoseconds; the zero time is kept distinct (its
// Unix nanoseconds are out of range) by a leading presence byte.
func (w *RecordWriter) Time(t time.Time) {
	if t.IsZero() {
		w.Bool(false)
		return
	}
	w.Bool(true)
	w.Int(t.UnixNano())
}

// RecordReader decodes a record written by RecordWriter. The first error
// sticks: later reads return zero values and Err reports it, so decoders
// read every field and check once.
type RecordReader struct {
	buf []byte
	err error
}

// NewRecordReader checks the version byte and returns a reader of the rest.
func NewRecordReader(rec []byte, version byte) *RecordReader {
	if len(rec) == 0 || rec[0] != version {
		return &RecordReader{err: fmt.Errorf("%w: unknown record version", ErrCorrupt)}
	}
	return &RecordReader{buf: rec[1:]}
}

// Err returns the first decoding error, or ErrCorrupt if bytes are left over.
func (r *RecordReader) Err() error {
	if r.err == nil && len(r.buf) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(r.buf))
	}
	return r.err
}

func (r *RecordReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	r.buf = nil
}

// Uint reads an unsigned varint.
func (r *RecordReader) Uint() uint64 {
	v, n := binary.Uvarint(r.buf)
	// An overlong encoding (last byte zero) is refused so that one value
	// has exactly one encoding.
	if n <= 0 || (n > 1 && r.buf[n-1] == 0) {
		r.fail("uvarint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// Int reads a signed varint.
func (r *RecordReader) Int() int64 {
	v, n := binary.Varint(r.buf)
	if n <= 0 || (n > 1 && r.buf[n-1] == 0) {
		r.fail("varint")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// Bool reads one byte that must be 0 or 1.
func (r *RecordReader) Bool() bool {
	if len(r.buf) == 0 || r.buf[0] > 1 {
		r.fail("bool")
		return false
	}
	v := r.buf[0] == 1
	r.buf = r.buf[1:]
	return v
}

// Blob reads a length-prefixed byte string; the result is a copy.
func (r *RecordReader) Blob() []byte {
	n := r.Uint()
	if n > uint64(len(r.buf)) {
		r.fail("length")
		return nil
	}
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	copy(b, r.buf)
	r.buf = r.buf[n:]
	return b
}

// String reads a length-prefixed string.
func (r *RecordReader) String() string {
	n := r.Uint()
	if n > uint64(len(r.buf)) {
		r.fail("length")
		return ""
	}
	s := string(r.buf[:n])
	r.buf = r.buf[n:]
	return s
}

// Strings reads a count and then each string.
func (r *RecordReader) Strings() []string {
	n := r.Uint()
	if n > maxRecordItems || n > uint64(len(r.buf)) {
		r.fail("count")
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, r.String())
	}
	return out
}

// Time reads a time written by RecordWriter.Time, in UTC.
func (r *RecordReader) Time() time.Time {
	if !r.Bool() {
		return time.Time{}
	}
	return time.Unix(0, r.Int()).UTC()
}

// Uint32 reads an unsigned varint that must fit 32 bits.
func (r *RecordReader) Uint32() uint32 {
	v := r.Uint()
	if v > math.MaxUint32 {
		r.fail("uint32")
		return 0
	}
	return uint32(v)
}

// Count reads an item count for a list the caller decodes itself; it fails
// when the count exceeds the bytes left (every item takes at least one).
func (r *RecordReader) Count() int {
	n := r.Uint()
	if n > maxRecordItems || n > uint64(len(r.buf)) {
		r.fail("count")
		return 0
	}
	return int(n)
}

// SkipBlob steps over a length-prefixed byte string without copying it.
func (r *RecordReader) SkipBlob() {
	n := r.Uint()
	if n > uint64(len(r.buf)) {
		r.fail("length")
		return
	}
	r.buf = r.buf[n:]
}

// Uint8 reads an unsigned varint that must fit 8 bits.
func (r *RecordReader) Uint8() uint8 {
	v := r.Uint()
	if v > math.MaxUint8 {
		r.fail("uint8")
		return 0
	}
	return uint8(v)
}
