package bridge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"smessenger/internal/store"
	"smessenger/pgp"
)

// cacheAccount opens the cache at path as an Account with no server, the
// way Open does after unlocking the vault.
func cacheAccount(t testing.TB, path string, key []byte, cfg OpenConfig) *Account {
	t.Helper()
	a := &Account{cfg: cfg, log: discardLog(), vault: &vaultFile{}, boxes: map[uint64]*mbox{},
		byName: map[string]uint64{}, refs: map[store.MessageID]int{}, synced: make(chan struct{}),
		prefetch: make(chan struct{}, 1)}
	a.bodies = newBodyLRU(32 << 20)
	sm := cfg.SummaryMemory
	if sm <= 0 {
		sm = DefaultSummaryMemory
	}
	a.sums = newSumLRU(sm)
	a.watch.init()
	if err := a.openCache(path, key); err != nil {
		t.Fatal(err)
	}
	return a
}

// fillCache writes n messages spread over the given mailboxes straight
// through the cache layer, with small synthetic summaries, in batches.
func fillCache(t testing.TB, path string, key []byte, boxes []string, n int) {
	t.Helper()
	c, err := openCache(path, key, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	err = c.db.Update(func(tx *bolt.Tx) error {
		for i, name := range boxes {
			mb := store.Mailbox{ID: uint64(i + 1), Name: name, UIDValidity: 1, UIDNext: uint32(n + 1)}
			if err := c.putMailbox(tx, mb); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	flags := [][]string{nil, {`\Seen`}, {`\Seen`, `\Answered`}}
	for start := 0; start < n; start += 5000 {
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i := start; i < min(start+5000, n); i++ {
				raw := []byte(fmt.Sprintf("From: Sender %d <s%d@example.net>\r\nTo: bob@example.org\r\n"+
					"Subject: message number %d\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n"+
					"Message-ID: <m%d@example.net>\r\n\r\nHello %d\r\n", i, i, i, i, i))
				sum, err := pgp.Summarize(raw)
				if err != nil {
					return err
				}
				e := &entry{uid: uint32(i/len(boxes) + 1), id: store.MessageID(i + 1), flags: flags[i%3],
					date: time.Unix(1700000000+int64(i), 0).UTC(), size: int64(len(raw)), sum: sum}
				if err := c.putSummary(tx, e.id, sum); err != nil {
					return err
				}
				if err := c.putMessage(tx, uint64(i%len(boxes)+1), e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSummariesOnDemand: the index holds no summaries; Messages reads them
// from the cache, the LRU stays within its budget, and a listing larger
// than the budget is still complete and correct.
func TestSummariesOnDemand(t *testing.T) {
	path := filepath.Join(t.TempDir(), cacheName)
	key := bytes.Repeat([]byte{3}, 32)
	fillCache(t, path, key, []string{"INBOX", "Archive"}, 600)
	a := cacheAccount(t, path, key, OpenConfig{SummaryMemory: 64 << 10})
	defer a.cache.close()
	for _, b := range a.boxes {
		for _, e := range b.msgs {
			if e.sum != nil {
				t.Fatal("index entry holds a summary")
			}
		}
	}
	ctx := context.Background()
	for round := 0; round < 2; round++ {
		ms, err := a.Messages(ctx, "Archive")
		if err != nil || len(ms) != 300 {
			t.Fatalf("%d messages, %v", len(ms), err)
		}
		for i, m := range ms {
			want := fmt.Sprintf("message number %d", 2*i+1)
			if m.Summary == nil || m.Summary.Envelope.Subject != want || m.UID != uint32(i+1) {
				t.Fatalf("round %d, message %d: %+v", round, i, m)
			}
		}
		if a.sums.used > a.sums.max || a.sums.len() == 0 || a.sums.len() >= 300 {
			t.Fatalf("LRU holds %d summaries, %d of %d bytes", a.sums.len(), a.sums.used, a.sums.max)
		}
	}
	// A flag change rewrites the small index record only; summaries stay.
	if err := a.setFlags(2, map[uint32][]string{1: {`\Flagged`}}, nil, 0); err != nil {
		t.Fatal(err)
	}
	a.sums = newSumLRU(DefaultSummaryMemory)
	ms, _ := a.Messages(ctx, "Archive")
	if ms[0].Summary == nil || ms[0].Summary.Envelope.Subject != "message number 1" || ms[0].Flags[0] != `\Flagged` {
		t.Fatalf("after STORE: %+v", ms[0])
	}
	// An expunge removes the orphaned summary from the cache.
	if err := a.removeUIDs(2, []uint32{1}, 0); err != nil {
		t.Fatal(err)
	}
	got, _, _ := a.cache.summaries([]store.MessageID{2})
	if got[0] != nil {
		t.Fatal("expunged message's summary still cached")
	}
}

// TestCacheMigrateSchema1: a schema 1 cache (summaries inside the message
// records) opens as schema 2 with everything kept: nothing is rebuilt.
func TestCacheMigrateSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), cacheName)
	key := bytes.Repeat([]byte{4}, 32)
	c, err := openCache(path, key, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	raw := testMessage("old subject", "old body")
	e := testEntry(t, 9, raw)
	err = c.db.Update(func(tx *bolt.Tx) error {
		if err := c.putMailbox(tx, store.Mailbox{ID: 1, Name: "INBOX", UIDValidity: 5, UIDNext: 10}); err != nil {
			return err
		}
		// The schema 1 record: version 1, then the summary after the flags.
		v1 := append(encodeRecord(e), pgp.EncodeSummary(e.sum)...)
		v1[0] = recordVersion1
		bk, k := u64key(1), u32key(9)
		if err := tx.Bucket(bucketMessages).Bucket(bk).Put(k, c.s.seal(v1, aadFor(bucketMessages, bk, k))); err != nil {
			return err
		}
		if err := c.putSeq(tx, 12); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	c.close()
	a := cacheAccount(t, path, key, OpenConfig{})
	defer a.cache.close()
	if aside, _ := filepath.Glob(path + ".damaged-*"); len(aside) != 0 {
		t.Fatal("schema 1 cache was set aside instead of migrated")
	}
	ms, err := a.Messages(context.Background(), "INBOX")
	if err != nil || len(ms) != 1 || ms[0].UID != 9 || ms[0].Summary == nil ||
		ms[0].Summary.Envelope.Subject != "old subject" || a.currentSeq() != 12 || ms[0].Flags[1] != "$Label1" {
		t.Fatalf("migrated: %+v %v seq %d", ms, err, a.currentSeq())
	}
	a.cache.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); string(v) != cacheSchema {
			t.Fatalf("schema still %q", v)
		}
		return nil
	})
}

// TestPrefetchBounded: prefetch takes only the newest messages of each
// mailbox, INBOX first, within the byte budget.
func TestPrefetchBounded(t *testing.T) {
	a := bareAccount()
	a.boxes[2] = &mbox{info: store.Mailbox{ID: 2, Name: "Archive"}}
	for uid := uint32(1); uid <= 10; uid++ {
		a.boxes[1].msgs = append(a.boxes[1].msgs, &entry{uid: uid, id: store.MessageID(uid), size: 100, hasBody: uid == 9})
		a.boxes[2].msgs = append(a.boxes[2].msgs, &entry{uid: uid, id: store.MessageID(100 + uid), size: 100})
	}
	uids := func(js []prefetchJob) string {
		var s []string
		for _, j := range js {
			s = append(s, fmt.Sprint(j.mbID, ":", j.e.uid))
		}
		return strings.Join(s, " ")
	}
	a.cfg = OpenConfig{PrefetchMessages: 3}
	if got := uids(a.prefetchList()); got != "1:10 1:8 2:10 2:9 2:8" {
		t.Fatalf("newest 3 per mailbox: %s", got)
	}
	a.cfg = OpenConfig{PrefetchMessages: -1, PrefetchBytes: 350}
	if got := uids(a.prefetchList()); got != "1:10 1:8 1:7" {
		t.Fatalf("byte budget: %s", got)
	}
	a.cfg = OpenConfig{PrefetchMessages: -1, PrefetchBytes: -1}
	if got := a.prefetchList(); len(got) != 19 {
		t.Fatalf("unbounded: %d", len(got))
	}
}

// procStatus returns a field of /proc/self/status in bytes (Linux), or 0.
func procStatus(field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func vmRSS() uint64 { return procStatus("VmRSS") }

// BenchmarkMemory50k fills a cache with 50,000 messages (small synthetic
// summaries, written through the cache layer) over INBOX and two other
// mailboxes, opens it as an Account and lists every mailbox with
// Messages. It reports the heap in use and the process RSS after the
// listing (results dropped, GC run), the peak RSS, and the time of one
// full listing. SMESSENGER_BENCH_N changes the count.
func BenchmarkMemory50k(b *testing.B) {
	n := 50000
	if v, err := strconv.Atoi(os.Getenv("SMESSENGER_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	path := filepath.Join(b.TempDir(), cacheName)
	key := bytes.Repeat([]byte{5}, 32)
	boxes := []string{"INBOX", "Archive", "Sent"}
	fillCache(b, path, key, boxes, n)
	runtime.GC()
	debug.FreeOSMemory()
	a := cacheAccount(b, path, key, OpenConfig{})
	defer a.cache.close()
	ctx := context.Background()
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	heapIndex := m0.HeapInuse // the index alone, before any listing
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		total := 0
		for _, name := range boxes {
			ms, err := a.Messages(ctx, name)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range ms {
				if m.Summary == nil {
					b.Fatal("summary missing")
				}
			}
			total += len(ms)
		}
		if total != n {
			b.Fatalf("listed %d of %d", total, n)
		}
	}
	b.StopTimer()
	peak := vmRSS()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heapMB")
	b.ReportMetric(float64(vmRSS())/(1<<20), "rssMB")
	b.ReportMetric(float64(peak)/(1<<20), "peakRssMB")
	b.ReportMetric(float64(procStatus("RssFile"))/(1<<20), "rssFileMB")
	b.ReportMetric(float64(procStatus("RssAnon"))/(1<<20), "rssAnonMB")
	b.ReportMetric(float64(heapIndex)/(1<<20), "indexHeapMB")
	b.ReportMetric(float64(ms.HeapInuse-heapIndex)/(1<<20), "lruHeapMB")
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "fileMB")
	}
	b.ReportMetric(float64(a.sums.len()), "lruSummaries")
}

// BenchmarkMessages5kCache lists a 5,000-message mailbox whose summaries
// live in the cache, as imapd does at SELECT before a warm header fetch:
// "warm" with the summaries in the LRU (the default budget holds them),
// "cold" with an LRU too small for them, so every listing reads all 5,000
// from the cache in one read transaction.
func BenchmarkMessages5kCache(b *testing.B) {
	path := filepath.Join(b.TempDir(), cacheName)
	key := bytes.Repeat([]byte{6}, 32)
	fillCache(b, path, key, []string{"INBOX"}, 5000)
	for _, bc := range []struct {
		name string
		mem  int64
	}{{"warm", 0}, {"cold", 1 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			a := cacheAccount(b, path, key, OpenConfig{SummaryMemory: bc.mem})
			defer a.cache.close()
			ctx := context.Background()
			if _, err := a.Messages(ctx, "INBOX"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ms, err := a.Messages(ctx, "INBOX")
				if err != nil || len(ms) != 5000 || ms[4999].Summary == nil {
					b.Fatalf("%d messages, %v", len(ms), err)
				}
			}
		})
	}
}
