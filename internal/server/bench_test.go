package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
)

func benchEnv(b *testing.B) *servertest.Env {
	env, _ := benchEnvPath(b)
	return env
}

// benchEnvPath is benchEnv that also returns the bbolt file's path.
func benchEnvPath(b *testing.B) (*servertest.Env, string) {
	st, path := servertest.OpenBoltPath(b)
	return servertest.Start(b, st, func(c *server.Config) {
		c.HandshakesPerMinute = -1
		c.Limits.CallsPerSecond = -1
	}), path
}

// commitMeter counts the store's commits over a benchmark from the bbolt
// file's transaction id, to show how well group commit coalesces writes.
type commitMeter struct {
	path  string
	start uint64
}

func newCommitMeter(b *testing.B, path string) *commitMeter {
	id, err := servertest.BoltTxID(path)
	if err != nil {
		b.Fatal(err)
	}
	return &commitMeter{path: path, start: id}
}

// report adds appends/commit and commits/s for n appends over elapsed.
func (m *commitMeter) report(b *testing.B, n int, elapsed time.Duration) {
	id, err := servertest.BoltTxID(m.path)
	if err != nil {
		b.Fatal(err)
	}
	commits := float64(id - m.start)
	if commits > 0 {
		b.ReportMetric(float64(n)/commits, "appends/commit")
		b.ReportMetric(commits/elapsed.Seconds(), "commits/s")
	}
}

// BenchmarkDeliver10KB measures internal delivery of a 10 KB sealed message
// with 16 concurrent senders (16 accounts, each its own channel connection)
// to 16 recipients, on bbolt, with the node's collector setting
// (server.TuneGC; GOGC overrides it).
func BenchmarkDeliver10KB(b *testing.B) {
	defer server.TuneGC(0, 0)() // as smessenger server runs
	env, path := benchEnvPath(b)
	const senders = 16
	var clients []*api.Client
	var rcpts []string
	for i := 0; i < senders; i++ {
		_, tok := env.AddUser(b, fmt.Sprintf("s%d@example.org", i))
		c, _ := env.Client(b, tok)
		clients = append(clients, c)
		rcpt := fmt.Sprintf("r%d@example.org", i)
		env.AddUser(b, rcpt)
		rcpts = append(rcpts, rcpt)
	}
	body := make([]byte, 10<<10)
	hdr := make([]byte, 1<<10)
	_, _ = rand.Read(body)
	_, _ = rand.Read(hdr)
	var next atomic.Int64
	b.SetParallelism((senders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.SetBytes(int64(len(body) + len(hdr)))
	meter := newCommitMeter(b, path)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % senders
		c := clients[i]
		d := []api.Delivery{{Recipient: rcpts[i], Size: int64(len(body)), HeaderBlob: hdr, BodyBlob: body}}
		for pb.Next() {
			if err := c.Deliver(context.Background(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	meter.report(b, b.N, elapsed)
}

// BenchmarkWhoAmI is one API round trip over an established channel.
func BenchmarkWhoAmI(b *testing.B) {
	env := benchEnv(b)
	_, tok := env.AddUser(b, "w@example.org")
	c, _ := env.Client(b, tok)
	ctx := context.Background()
	if _, err := c.WhoAmI(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.WhoAmI(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// enrolDevices registers n device keys for acct directly in the store
// (enrolment through tokens is covered by the tests) and opens one event
// stream per device; it returns a channel that receives every event seen
// by any stream, and a stop function.
func openStreams(b *testing.B, env *servertest.Env, acct store.AccountID, n int) (chan uint64, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan uint64, n*4)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		ready.Add(1)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			kp, err := channel.GenerateKeyPair()
			if err == nil {
				_, err = env.Store.AddDevice(ctx, acct, kp.Public, "")
			}
			<-sem
			if err != nil {
				failed.Add(1)
				ready.Done()
				return
			}
			c := api.NewClient(env.Node.APIAddr().String(), env.ClientConfig(kp, ""))
			once := sync.Once{}
			_ = c.StreamEvents(ctx, 0, func(ev store.Event) error {
				once.Do(ready.Done)
				if ev.Kind == store.EventMessageAdded {
					seen <- ev.Seq
				}
				return nil
			})
			once.Do(func() { failed.Add(1); ready.Done() })
			c.CloseIdleConnections()
		}()
	}
	ready.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d streams failed to open", f, n)
	}
	return seen, func() { cancel(); wg.Wait() }
}

// BenchmarkFanout1000 measures how long one event takes to reach all of
// 1,000 open streams of one account.
func BenchmarkFanout1000(b *testing.B) {
	env := benchEnv(b)
	acct, _ := env.AddUser(b, "fan@example.org")
	// A first event so that every stream's backlog is non-empty and
	// openStreams can tell the stream is live.
	if _, err := env.Store.CreateMailbox(context.Background(), acct, "x", ""); err != nil {
		b.Fatal(err)
	}
	const n = 1000
	seen, stop := openStreams(b, env, acct, n)
	defer stop()
	msg := store.NewMessage{Size: 1, HeaderBlob: []byte("h"), BodyBlob: []byte("b")}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := env.Store.Append(context.Background(), acct, "INBOX", msg); err != nil {
			b.Fatal(err)
		}
		for k := 0; k < n; k++ {
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				b.Fatalf("only %d of %d streams got the event", k, n)
			}
		}
	}
}

// writeHeapProfile saves a heap profile (to see what each idle stream holds).
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkIdleStreams opens SMESSENGER_IDLE_STREAMS (default 1000) idle
// event streams and reports memory per device. Client and server run in
// this one process, so the figures include both ends of each connection
// (an upper bound for the server alone; BenchmarkIdleStreamsServer measures
// the node by itself in a child process).
func BenchmarkIdleStreams(b *testing.B) {
	n := 1000
	if s := os.Getenv("SMESSENGER_IDLE_STREAMS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	for i := 0; i < b.N; i++ {
		env := benchEnv(b)
		acct, _ := env.AddUser(b, fmt.Sprintf("idle%d@example.org", i))
		if _, err := env.Store.CreateMailbox(context.Background(), acct, "x", ""); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		rss0 := rssBytes()
		_, stop := openStreams(b, env, acct, n)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		rss1 := rssBytes()
		if p := os.Getenv("SMESSENGER_HEAP_PROFILE"); p != "" {
			writeHeapProfile(b, p)
		}
		heap := float64(int64(m1.HeapInuse+m1.StackInuse)-int64(m0.HeapInuse+m0.StackInuse)) / float64(n)
		rss := float64(rss1-rss0) / float64(n)
		b.ReportMetric(heap/1024, "heap+stack-KB/device")
		b.ReportMetric(rss/1024, "RSS-KB/device")
		b.ReportMetric(rss*10000/(1<<20), "RSS-MB/10k-devices")
		b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/device")
		stop()
		env.Stop(b)
	}
}

// BenchmarkStoreAppend10KB is the same load as BenchmarkDeliver10KB straight
// on the bbolt store, without the API and channel: the floor set by the
// store and the disk's fsync latency.
func BenchmarkStoreAppend10KB(b *testing.B) {
	st, path := servertest.OpenBoltPath(b)
	var accts []store.AccountID
	for i := 0; i < 16; i++ {
		a, err := st.CreateAccount(context.Background(), fmt.Sprintf("r%d@example.org", i), 0)
		if err != nil {
			b.Fatal(err)
		}
		accts = append(accts, a.ID)
	}
	msg := store.NewMessage{Size: 10 << 10, HeaderBlob: make([]byte, 1<<10), BodyBlob: make([]byte, 10<<10)}
	_, _ = rand.Read(msg.BodyBlob)
	var next atomic.Int64
	b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	meter := newCommitMeter(b, path)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		a := accts[int(next.Add(1)-1)%16]
		for pb.Next() {
			if _, err := st.Append(context.Background(), a, "INBOX", msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	meter.report(b, b.N, elapsed)
}
