package bridge_test

import (
	"bytes"
	"net"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
	"smessenger/imapd"
)

func heapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkIMAPSelected50k serves an Account whose INBOX holds 50,000
// messages (small synthetic summaries in the encrypted cache) over imapd,
// SELECTs INBOX with a real client and reports the heap that the bridge
// and imapd hold for the selected mailbox (index, summary LRU, imapd's
// per-mailbox state: selectedMB, above what the index alone took), the
// heap still held after a FETCH 1:* (UID FLAGS ENVELOPE) of every message
// (afterFetchMB), and the times of the SELECT and of that fetch.
func BenchmarkIMAPSelected50k(b *testing.B) {
	const n = 50000
	path := filepath.Join(b.TempDir(), bridge.TestCacheName)
	key := bytes.Repeat([]byte{7}, 32)
	bridge.FillTestCache(b, path, key, []string{"INBOX"}, n)
	a := bridge.OpenTestCacheAccount(b, path, key)
	defer a.CloseTestCache()
	srv := imapd.New(imapd.Config{Users: imapd.AuthenticatorFunc(func(u, p string) (bridge.View, bool) {
		return a, u == "user" && p == "pass"
	})})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	c, err := imapclient.DialInsecure(l.Addr().String(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("user", "pass").Wait(); err != nil {
		b.Fatal(err)
	}
	base := heapInUse()
	start := time.Now()
	if sel, err := c.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != n {
		b.Fatalf("SELECT: %v %+v", err, sel)
	}
	selTime := time.Since(start)
	selected := heapInUse()
	opts := &imap.FetchOptions{UID: true, Flags: true, Envelope: true}
	var fetch time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		cmd := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, opts)
		got := 0
		for m := cmd.Next(); m != nil; m = cmd.Next() {
			if buf, err := m.Collect(); err != nil || buf.Envelope == nil || buf.Envelope.Subject == "" {
				b.Fatalf("message %d: %v", got, err)
			}
			got++
		}
		if err := cmd.Close(); err != nil || got != n {
			b.Fatalf("FETCH: %d of %d, %v", got, n, err)
		}
		fetch += time.Since(start)
	}
	b.StopTimer()
	after := heapInUse()
	b.ReportMetric(float64(base)/(1<<20), "indexHeapMB")
	b.ReportMetric((float64(selected)-float64(base))/(1<<20), "selectedMB")
	b.ReportMetric((float64(after)-float64(base))/(1<<20), "afterFetchMB")
	b.ReportMetric(fetch.Seconds()/float64(b.N), "s/fetch")
	b.ReportMetric(selTime.Seconds(), "s/select")
}
