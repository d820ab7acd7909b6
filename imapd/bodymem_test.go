package imapd

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
)

// bodyCorpus builds n messages of which every (n/big)-th carries an
// attachment of about attach bytes (random, so it does not compress); the
// others are a few KiB of text. Deterministic for a given n.
func bodyCorpus(n, big, attach int) [][]byte {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	every := n + 1
	if big > 0 {
		every = n / big
	}
	out := make([][]byte, n)
	for i := range out {
		var b strings.Builder
		fmt.Fprintf(&b, "From: Sender %d <s%d@example.net>\r\nTo: carol@example.org\r\nSubject: body memory %d\r\n"+
			"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <bm%d@example.net>\r\nMIME-Version: 1.0\r\n", i, i, i, i)
		text := strings.Repeat(fmt.Sprintf("line %d of a message with some words in it\r\n", i), 20+rng.IntN(80))
		if i%every != every-1 {
			b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n" + text)
			out[i] = []byte(b.String())
			continue
		}
		raw := make([]byte, attach*3/4)
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		b.WriteString("Content-Type: multipart/mixed; boundary=BM\r\n\r\n--BM\r\nContent-Type: text/plain\r\n\r\n" + text +
			"--BM\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--BM--\r\n")
		out[i] = []byte(b.String())
	}
	return out
}

// memSampler records, every few milliseconds, the peak of the Go heap
// (bytes in live and not yet swept objects) and of RssAnon and RssFile
// from /proc/self/status, and of the mapped pages of files under dir.
type memSampler struct {
	stop                   chan struct{}
	done                   sync.WaitGroup
	heap, rssAnon, rssFile atomic.Int64
	samples                []metrics.Sample
	cacheRss               atomic.Int64 // mapped pages of files under dir
	dir                    string
}

func startMemSampler(dir string) *memSampler {
	m := &memSampler{stop: make(chan struct{}), dir: dir,
		samples: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			metrics.Read(m.samples)
			if h := int64(m.samples[0].Value.Uint64()); h > m.heap.Load() {
				m.heap.Store(h)
			}
			if n%10 == 0 {
				a, f := procStatus("RssAnon"), procStatus("RssFile")
				m.rssAnon.Store(max(m.rssAnon.Load(), a))
				m.rssFile.Store(max(m.rssFile.Load(), f))
				m.cacheRss.Store(max(m.cacheRss.Load(), mappedRss(m.dir)))
			}
			select {
			case <-tick.C:
			case <-m.stop:
				return
			}
		}
	}()
	return m
}

func (m *memSampler) finish() {
	close(m.stop)
	m.done.Wait()
}

// procStatus reads a "kB" field of /proc/self/status, in bytes (0 if it
// cannot be read: not Linux).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// mappedRss sums the resident pages of this process's mappings of files
// under dir (Linux /proc/self/smaps), in bytes.
func mappedRss(dir string) int64 {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0
	}
	var sum int64
	in := false
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-"):
			in = len(f) == 6 && strings.HasPrefix(f[5], dir)
		case in && len(f) == 3 && f[0] == "Rss:":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n << 10
		}
	}
	return sum
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// fetchAllBodies runs UID FETCH 1:* (UID BODY.PEEK[]) and streams each
// literal to io.Discard; it returns the messages and bytes received.
func fetchAllBodies(t testing.TB, c *imapclient.Client, logs *syncBuffer) (msgs int, total int64) {
	t.Helper()
	cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	for m := cmd.Next(); m != nil; m = cmd.Next() {
		for it := m.Next(); it != nil; it = m.Next() {
			if bs, ok := it.(imapclient.FetchItemDataBodySection); ok {
				n, err := io.Copy(io.Discard, bs.Literal)
				if err != nil {
					t.Fatalf("literal: %v", err)
				}
				total += n
			}
		}
		msgs++
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("FETCH: %v\n%s", err, logs.String())
	}
	return msgs, total
}

// BenchmarkFetchBodiesMemory measures the memory a full download of every
// body takes: a bridge synced with 2,000 messages (100 of them with a
// 1 MiB attachment) serves UID FETCH 1:* BODY.PEEK[] to a go-imap client
// that streams each literal away. The first pass downloads, decrypts and
// caches the bodies (with background prefetch running, as after a real
// first sync); the second reads them back from the cache. Reported: the
// peak Go heap (objects) and the peak RssAnon, RssFile and VmHWM of the
// process during each pass (the server node runs in this process too, so
// RssFile holds its store's mapping as well; PeakCacheMapMB is the bridge
// cache's mapping alone).
// Run it once: go test -run XXX -bench BenchmarkFetchBodiesMemory -benchtime 1x ./imapd/
// Where the bytes come from: add -memprofile and read it with
// go tool pprof -sample_index=alloc_space.
func BenchmarkFetchBodiesMemory(b *testing.B) {
	benchFetchBodies(b, 2000, 100)
}

func benchFetchBodies(b *testing.B, n, big int) {
	raws := bodyCorpus(n, big, 1<<20)
	var want int64
	for _, r := range raws {
		want += int64(len(r))
	}
	// Every body is one API call: lift the per-account rate limit, which
	// is not what is measured here.
	rb := startBridgeWith(b, func(env *servertest.Env, user string) {
		deliverSealed(b, env, user, raws)
	}, nil, realBridgeOptions{server: func(c *server.Config) { c.Limits.CallsPerSecond = -1 }})
	raws = nil
	c := rb.dial(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"cold", "warm"} {
		runtime.GC()
		debug.FreeOSMemory()
		base := procStatus("RssAnon")
		resetPeakRSS()
		m := startMemSampler(rb.dataDir)
		start := time.Now()
		got, total := fetchAllBodies(b, c, rb.logs)
		d := time.Since(start)
		m.finish()
		if got != n || total < want {
			b.Fatalf("%s pass: %d messages, %d bytes; want %d, at least %d", name, got, total, n, want)
		}
		b.ReportMetric(float64(m.heap.Load())/(1<<20), name+"PeakHeapMB")
		b.ReportMetric(float64(base)/(1<<20), name+"BaseRssAnonMB")
		b.ReportMetric(float64(m.rssAnon.Load())/(1<<20), name+"PeakRssAnonMB")
		b.ReportMetric(float64(m.rssFile.Load())/(1<<20), name+"PeakRssFileMB")
		b.ReportMetric(float64(m.cacheRss.Load())/(1<<20), name+"PeakCacheMapMB")
		b.ReportMetric(float64(procStatus("VmHWM"))/(1<<20), name+"VmHWMMB")
		b.ReportMetric(d.Seconds(), name+"s")
	}
}

// TestFetchBodiesStreamed: a full UID FETCH 1:* BODY.PEEK[] over a real
// bridge returns every message byte for byte, first as downloaded and then
// from the bridge's cache (where the large ones are stored in chunks), and
// SEARCH TEXT finds words in both kinds of message.
func TestFetchBodiesStreamed(t *testing.T) {
	const n = 40
	raws := bodyCorpus(n, 4, 300<<10)
	rb := startBridgeWith(t, func(env *servertest.Env, user string) {
		deliverSealed(t, env, user, raws)
	}, nil, realBridgeOptions{server: func(c *server.Config) { c.Limits.CallsPerSecond = -1 }})
	c := rb.dial(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, pass := range []string{"downloaded", "cached"} {
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil || len(msgs) != n {
			t.Fatalf("%s: FETCH: %v, %d messages", pass, err, len(msgs))
		}
		seen := map[int]bool{}
		for _, m := range msgs {
			body := m.FindBodySection(&imap.FetchItemBodySection{})
			var i int
			if _, err := fmt.Sscanf(string(body[bytes.Index(body, []byte("Subject: ")):]), "Subject: body memory %d", &i); err != nil || i < 0 || i >= n {
				t.Fatalf("%s: UID %d: no subject: %v", pass, m.UID, err)
			}
			if !bytes.Equal(body, raws[i]) {
				t.Fatalf("%s: message %d (UID %d): %d bytes, want %d", pass, i, m.UID, len(body), len(raws[i]))
			}
			seen[i] = true
		}
		if len(seen) != n {
			t.Fatalf("%s: %d distinct messages", pass, len(seen))
		}
	}
	// Message 9 is one of the large ones; every message has its own line.
	for word, want := range map[string]int{"line 9 of a message": 1, "application/octet-stream": 4} {
		data, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{word}}, nil).Wait()
		if err != nil || len(data.AllUIDs()) != want {
			t.Errorf("SEARCH TEXT %q: %v, %v", word, data.AllUIDs(), err)
		}
	}
}
