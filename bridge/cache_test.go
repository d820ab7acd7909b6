package bridge

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
	"smessenger/pgp"
)

const marker = "zorblaxmarker"

func testMessage(subject, body string) []byte {
	return []byte("From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + subject + "@example.org>\r\n\r\n" + body + "\r\n")
}

func testEntry(t testing.TB, uid uint32, raw []byte) *entry {
	t.Helper()
	sum, err := pgp.Summarize(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &entry{uid: uid, id: store.MessageID(uid + 1000), flags: []string{`\Seen`, "$Label1"},
		date: time.Unix(1700000000, 0).UTC(), size: int64(len(raw)), modseq: 7, sum: sum}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) }

func TestRecordRoundTrip(t *testing.T) {
	e := testEntry(t, 42, testMessage("round trip", "hello"))
	e.decrypted, e.external = true, true
	got, err := decodeRecord(encodeRecord(e))
	if err != nil {
		t.Fatal(err)
	}
	if got.uid != e.uid || got.id != e.id || !reflect.DeepEqual(got.flags, e.flags) || !got.date.Equal(e.date) ||
		got.size != e.size || got.modseq != e.modseq || !got.decrypted || !got.external {
		t.Fatalf("record changed: %+v vs %+v", got, e)
	}
	if got.sum != nil {
		t.Fatal("an index record carries a summary")
	}
	for n := 0; n < len(encodeRecord(e)); n += 7 {
		if _, err := decodeRecord(encodeRecord(e)[:n]); err == nil {
			t.Fatalf("truncated record (%d bytes) decoded", n)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	e := testEntry(f, 1, testMessage("seed", "body"))
	f.Add(encodeRecord(e))
	v1 := append(encodeRecord(e), pgp.EncodeSummary(e.sum)...)
	v1[0] = recordVersion1
	f.Add(v1)
	f.Add([]byte{recordVersion})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, err := decodeRecordV1(b); err == nil && (e.sum == nil || e.uid == 0) {
			t.Fatal("schema 1 record decoded without summary or UID")
		} else if err != nil && !errors.Is(err, errRecord) {
			t.Fatalf("schema 1 error is not errRecord: %v", err)
		}
		e, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errRecord) {
				t.Fatalf("error is not errRecord: %v", err)
			}
			return
		}
		if _, err := decodeRecord(encodeRecord(e)); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
	})
}

// TestCacheEncryptedAtRest writes a mailbox, a message and a body holding a
// marker and checks that the file never contains it, then that the same
// key loads it back.
func TestCacheEncryptedAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), cacheName)
	key := bytes.Repeat([]byte{7}, 32)
	c, err := openCache(path, key, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	raw := testMessage("subject "+marker, "body "+marker)
	e := testEntry(t, 5, raw)
	err = c.db.Update(func(tx *bolt.Tx) error {
		if err := c.putMailbox(tx, store.Mailbox{ID: 3, Name: "Box " + marker, UIDValidity: 9, UIDNext: 6}); err != nil {
			return err
		}
		if err := c.putMessage(tx, 3, e); err != nil {
			return err
		}
		if err := c.putSummary(tx, e.id, e.sum); err != nil {
			return err
		}
		if err := c.putBody(tx, e.id, raw); err != nil {
			return err
		}
		return c.putSeq(tx, 77)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(marker)) {
		t.Fatal("cache file contains plaintext")
	}
	c, err = openCache(path, key, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.load()
	if err != nil {
		t.Fatal(err)
	}
	if l.seq != 77 || l.boxes[3] == nil || l.boxes[3].info.Name != "Box "+marker || len(l.boxes[3].msgs) != 1 ||
		!l.boxes[3].msgs[0].hasBody || l.boxes[3].msgs[0].sum != nil {
		t.Fatalf("loaded %+v", l)
	}
	sums, failed, err := c.summaries([]store.MessageID{e.id, 999})
	if err != nil || failed != 0 || sums[0] == nil || sums[0].Envelope.Subject != "subject "+marker || sums[1] != nil {
		t.Fatalf("summaries %+v %d %v", sums, failed, err)
	}
	body, err := c.getBody(e.id)
	if err != nil || !bytes.Equal(body, raw) {
		t.Fatalf("body %q %v", body, err)
	}
	c.close()

	// Another key: the cache is kept aside and a fresh one made.
	var logs bytes.Buffer
	c, err = openCache(path, bytes.Repeat([]byte{8}, 32), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	l, err = c.load()
	if err != nil || len(l.boxes) != 0 || l.seq != 0 {
		t.Fatalf("fresh cache not empty: %+v %v", l, err)
	}
	aside, _ := filepath.Glob(path + ".damaged-*")
	if len(aside) != 1 || !strings.Contains(logs.String(), "damaged") {
		t.Fatalf("old cache not kept aside (%v) or not logged: %s", aside, logs.String())
	}
}

func TestCacheGarbageFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), cacheName)
	if err := os.WriteFile(path, bytes.Repeat([]byte("garbage!"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := openCache(path, bytes.Repeat([]byte{1}, 32), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	aside, _ := filepath.Glob(path + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("garbage file not kept aside: %v", aside)
	}
	kept, _ := os.ReadFile(aside[0])
	if !bytes.HasPrefix(kept, []byte("garbage!")) {
		t.Fatal("kept file is not the original")
	}
}

func TestSealerBindsLocation(t *testing.T) {
	s, _ := newSealer(bytes.Repeat([]byte{2}, 32))
	box := s.seal([]byte("x"), aadFor(bucketBodies, nil, u64key(1)))
	if _, err := s.open(box, aadFor(bucketBodies, nil, u64key(2))); !errors.Is(err, errOpen) {
		t.Fatal("record moved to another key still opened")
	}
	if _, err := s.open(box[:10], nil); !errors.Is(err, errOpen) {
		t.Fatal("short record opened")
	}
}
