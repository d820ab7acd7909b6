package store

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	w := NewRecordWriter(3, 0)
	w.Uint(300)
	w.Int(-5)
	w.Bool(true)
	w.Blob([]byte{0, 1})
	w.String("héllo")
	w.Strings([]string{"a", "", "c"})
	w.Time(now)
	w.Time(time.Time{})
	w.Uint(42)
	r := NewRecordReader(w.Bytes(), 3)
	if r.Uint() != 300 || r.Int() != -5 || !r.Bool() || !bytes.Equal(r.Blob(), []byte{0, 1}) || r.String() != "héllo" ||
		!slices.Equal(r.Strings(), []string{"a", "", "c"}) || !r.Time().Equal(now) || !r.Time().IsZero() || r.Uint8() != 42 {
		t.Fatal("record did not round-trip")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRecordErrors(t *testing.T) {
	for name, rec := range map[string][]byte{
		"empty":         {},
		"wrong version": {9, 0},
		"truncated":     {1, 5, 'a'},
		"trailing":      {1, 0, 0, 7},
		"overlong":      {1, 0x80, 0x00},
		"bad bool":      {1, 2},
	} {
		r := NewRecordReader(rec, 1)
		_ = r.String()
		_ = r.Bool()
		if err := r.Err(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Err() = %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzRecordReader checks that no input makes the reader panic or allocate
// past its input, and that what decodes re-encodes to the same bytes.
func FuzzRecordReader(f *testing.F) {
	w := NewRecordWriter(1, 0)
	w.Strings([]string{"x", "yy"})
	w.Time(time.Unix(1, 2))
	w.Blob([]byte("blob"))
	f.Add(w.Bytes())
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 0, 1, 0x80})
	f.Fuzz(func(t *testing.T, rec []byte) {
		r := NewRecordReader(rec, 1)
		ss := r.Strings()
		tm := r.Time()
		b := r.Blob()
		if r.Err() != nil {
			return
		}
		w := NewRecordWriter(1, 0)
		w.Strings(ss)
		w.Time(tm)
		w.Blob(b)
		if !bytes.Equal(w.Bytes(), rec) {
			t.Fatalf("re-encoded %x, read %x", w.Bytes(), rec)
		}
	})
}
