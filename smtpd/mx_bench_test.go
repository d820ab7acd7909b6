package smtpd

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"smessenger/internal/server"
	"smessenger/internal/store"
	"smessenger/internal/store/redis"
	"smessenger/internal/testutil/redistest"
)

// BenchmarkMXAccept10KB: 20 concurrent go-smtp clients, each reusing its
// connection, send 10 KB messages; sealing and the durable store commit
// are included. Reported as msgs/s. MX_BENCH_SENDERS changes the number of
// senders.
func BenchmarkMXAccept10KB(b *testing.B) {
	b.Run("bolt", func(b *testing.B) { mxBenchAccept(b, mxTestStore(b)) })
	b.Run("redis", func(b *testing.B) {
		st, err := redis.Open(context.Background(), redistest.Start(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		mxBenchAccept(b, st)
	})
}

func mxBenchAccept(b *testing.B, st store.Store) {
	defer server.TuneGC(0, 0)() // the collector setting of smessenger server, which runs the MX
	e := mxStartOn(b, st, func(c *MXConfig) { c.ConnsPerSource = 100; c.CommandsPerMinute = 1 << 30 })
	msg := mxTestMessage("bench", strings.Repeat(strings.Repeat("x", 99)+"\r\n", 100))
	senders := 20
	if v, _ := strconv.Atoi(os.Getenv("MX_BENCH_SENDERS")); v > 0 {
		senders = v
	}
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(e.addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			for next.Add(1) <= int64(b.N) {
				if err := c.SendMail("bob@sender.test", []string{"alice@example.org"}, strings.NewReader(msg)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
