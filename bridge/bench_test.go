package bridge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// benchN is the number of messages of the sync benchmark
// (SMESSENGER_BENCH_N, default 5,000 as in the target).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("SMESSENGER_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 5000
}

// corpusMessage makes a mail of a few KB, like the shared corpus's plain
// and alternative messages.
func corpusMessage(i int) []byte {
	text := strings.Repeat(fmt.Sprintf("Line %d of a reasonably ordinary message body. ", i), 40+i%80)
	if i%3 == 0 {
		return []byte(fmt.Sprintf("From: Sender %d <s%d@example.net>\r\nTo: bob@example.org\r\nSubject: corpus %d\r\n"+
			"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <c%d@example.net>\r\nMIME-Version: 1.0\r\n"+
			"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n%s\r\n"+
			"--b\r\nContent-Type: text/html\r\n\r\n<p>%s</p>\r\n--b--\r\n", i, i, i, i, text, text))
	}
	return []byte(fmt.Sprintf("From: Sender %d <s%d@example.net>\r\nTo: bob@example.org\r\nSubject: corpus %d\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <c%d@example.net>\r\n\r\n%s\r\n", i, i, i, i, text))
}

// deliverCorpus seals n messages on all cores and delivers them in batches.
func deliverCorpus(b *testing.B, s *sender, n int) {
	ds := make([]api.Delivery, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				raw := corpusMessage(i)
				hb, bb, _, err := pgp.SealMessage(raw, []*pgp.Key{s.key}, pgp.SealOptions{Signer: s.user.Key})
				if err != nil {
					panic(err)
				}
				ds[i] = api.Delivery{Recipient: s.to, Size: int64(len(raw)), HeaderBlob: hb, BodyBlob: bb}
			}
		}(w)
	}
	wg.Wait()
	for i := 0; i < n; i += 100 {
		if err := s.user.Client.Deliver(context.Background(), ds[i:min(i+100, n)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdSync measures a first sync: listing, downloading and
// decrypting the header blobs of benchN messages into an empty cache, over
// the real channel from a real node. Unlocking the vault is not timed.
func BenchmarkColdSync(b *testing.B) {
	n := benchN()
	env := servertest.Start(b, servertest.OpenBolt(b), nil)
	_, tok := env.AddUser(b, bob)
	dir, _ := testLogin(b, env, bob, tok, nil)
	deliverCorpus(b, newSender(b, env, "alice@"+servertest.Domain, bob), n)
	ctx := context.Background()
	var heap uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.Remove(filepath.Join(dir, cacheName))
		a, err := Open(ctx, OpenConfig{DataDir: dir, Passphrase: testPass, NewServer: newTestServer, PrefetchWorkers: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := a.srv.WhoAmI(ctx); err != nil {
			b.Fatal(err)
		}
		if err := a.fullSync(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/sync")
		b.StopTimer()
		if got := countMessages(b, a, "INBOX"); got != n {
			b.Fatalf("synced %d of %d", got, n)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = ms.HeapInuse
		a.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(heap)/(1<<20), "heapMB")
}

// BenchmarkMessages measures listing a synced mailbox from the index, as
// imapd does for every FETCH 1:*.
func BenchmarkMessages(b *testing.B) {
	a := bareAccount()
	bx := a.boxes[1]
	sum, err := pgp.Summarize(corpusMessage(1))
	if err != nil {
		b.Fatal(err)
	}
	for uid := uint32(1); uid <= 5000; uid++ {
		bx.msgs = append(bx.msgs, &entry{uid: uid, id: store.MessageID(uid), flags: []string{`\Seen`}})
		a.sums.put(store.MessageID(uid), sum)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ms, _ := a.Messages(context.Background(), "INBOX"); len(ms) != 5000 {
			b.Fatal(len(ms))
		}
	}
}
