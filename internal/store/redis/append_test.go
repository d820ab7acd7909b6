package redis

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"

	"smessenger/internal/store"
	"smessenger/internal/testutil/redistest"
)

// snapshot returns every key with its type and, for hashes, its fields, so a
// test can see that a rejected Append changed nothing at all.
func snapshot(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	keys, err := s.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		typ, err := s.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = typ
		if typ == "hash" {
			h, err := s.rdb.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range slices.Sorted(maps.Keys(h)) {
				out[k] += "\n" + f + "=" + h[f]
			}
		}
	}
	return out
}

func openFresh(t *testing.T) *Store {
	t.Helper()
	s, err := Open(ctxT(t), redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAppendRejectedLeavesNothing checks that the staged blobs of a rejected
// append are gone with the transaction: no key, field or counter changes.
func TestAppendRejectedLeavesNothing(t *testing.T) {
	s := openFresh(t)
	ctx := ctxT(t)
	a, err := s.CreateAccount(ctx, "stage@example.org", 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 10, HeaderBlob: []byte("h"), BodyBlob: []byte("0123456789")}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 200)
	cases := []struct {
		name    string
		id      store.AccountID
		mailbox string
		want    error
	}{
		{"over quota", a.ID, "INBOX", store.ErrQuotaExceeded},
		{"no mailbox", a.ID, "Nope", store.ErrMailboxNotFound},
		{"no account", "0123abcd", "INBOX", store.ErrAccountNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t, s)
			_, err := s.Append(ctx, c.id, c.mailbox, store.NewMessage{Size: int64(len(body)), HeaderBlob: body[:20], BodyBlob: body})
			if !errors.Is(err, c.want) {
				t.Fatalf("Append = %v, want %v", err, c.want)
			}
			if after := snapshot(t, s); !maps.Equal(before, after) {
				t.Fatalf("rejected append changed the data:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// TestAppendAfterScriptFlush checks that an append survives a server that
// lost its script cache, and that the failed first attempt left no staging
// key behind.
func TestAppendAfterScriptFlush(t *testing.T) {
	s := openFresh(t)
	ctx := ctxT(t)
	a, err := s.CreateAccount(ctx, "flush@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	m, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 4, HeaderBlob: []byte("hd"), BodyBlob: []byte("body")})
	if err != nil {
		t.Fatalf("Append after SCRIPT FLUSH: %v", err)
	}
	if n, err := s.rdb.Exists(ctx, stageKey(a.ID)).Result(); err != nil || n != 0 {
		t.Fatalf("staging key left behind: %d, %v", n, err)
	}
	if b, err := s.BodyBlob(ctx, a.ID, m.ID); err != nil || string(b) != "body" {
		t.Fatalf("BodyBlob = %q, %v", b, err)
	}
	if h, err := s.HeaderBlobs(ctx, a.ID, []store.MessageID{m.ID}); err != nil || len(h) != 1 || string(h[0]) != "hd" {
		t.Fatalf("HeaderBlobs = %q, %v", h, err)
	}
}

// TestAppendLayout pins the message hash and the packed metadata record the
// other scripts read, now that Append builds them without the prelude's
// putMeta.
func TestAppendLayout(t *testing.T) {
	s := openFresh(t)
	ctx := ctxT(t)
	a, err := s.CreateAccount(ctx, "layout@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 7, HeaderBlob: []byte("head"), BodyBlob: []byte("bodybod"), Flags: []string{`\seen`, "x"}})
	if err != nil {
		t.Fatal(err)
	}
	p := acctPrefix(a.ID)
	id := strconv.FormatUint(uint64(m.ID), 10)
	h, err := s.rdb.HGetAll(ctx, p+"m:"+id).Result()
	if err != nil {
		t.Fatal(err)
	}
	mb := strconv.FormatUint(m.MailboxID, 10)
	date := strconv.FormatInt(m.InternalDate.UnixNano(), 10)
	want := map[string]string{
		"mb": mb, "uid": "1", "flags": `\Seen x`, "date": date, "size": "7",
		"modseq": strconv.FormatUint(m.ModSeq, 10), "hlen": "4", "blen": "7", "h": "head", "b": "bodybod",
	}
	if !maps.Equal(h, want) {
		t.Fatalf("message hash = %q, want %q", h, want)
	}
	rec, err := s.rdb.HGet(ctx, p+"mi:"+mb, id).Result()
	wantRec := id + "\t1\t\\Seen x\t" + date + "\t7\t" + want["modseq"] + "\t4\t7\t" + mb
	if err != nil || rec != wantRec {
		t.Fatalf("packed record = %q, %v; want %q", rec, err, wantRec)
	}
	mbox, err := s.GetMailbox(ctx, a.ID, "INBOX")
	if err != nil || mbox.Messages != 1 || mbox.Unseen != 0 || mbox.Size != 7 || mbox.UIDNext != 2 || mbox.HighestModSeq != m.ModSeq {
		t.Fatalf("mailbox after append = %+v, %v", mbox, err)
	}
}

// TestAppendLargeCounters checks that counters stay exact decimal integers
// above 1e14, where Lua's default number formatting would switch to
// exponent notation.
func TestAppendLargeCounters(t *testing.T) {
	s := openFresh(t)
	ctx := ctxT(t)
	a, err := s.CreateAccount(ctx, "big@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	const big = 300000000000000 // 3e14
	if err := s.rdb.HSet(ctx, acctKey(a.ID), "used", big).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: big, BodyBlob: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	used, err := s.rdb.HGet(ctx, acctKey(a.ID), "used").Result()
	if err != nil || used != "600000000000000" {
		t.Fatalf("used = %q, %v", used, err)
	}
	mbox, err := s.GetMailbox(context.Background(), a.ID, "INBOX")
	if err != nil || mbox.Size != big {
		t.Fatalf("mailbox size = %d, %v", mbox.Size, err)
	}
}
