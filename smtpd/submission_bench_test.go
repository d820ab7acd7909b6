package smtpd

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"smessenger/internal/server/servertest"
)

// BenchmarkSubmission measures end-to-end submissions of 10 KB messages
// over SMTP (AUTH, routing, sealing, the channel, the server's durable
// commit, the sealed Sent copy) with 8 concurrent clients, each on its own
// connection. One op is one message.
func BenchmarkSubmission(b *testing.B) {
	e := subStart(b)
	rcpts5 := []string{subBob}
	for i := 1; i < 5; i++ {
		u := e.env.NewUser(b, fmt.Sprintf("user%d@%s", i, servertest.Domain))
		rcpts5 = append(rcpts5, u.Address)
	}
	for _, bc := range []struct {
		name  string
		rcpts []string
	}{{"internal1", []string{subBob}}, {"internal5", rcpts5}} {
		b.Run(bc.name, func(b *testing.B) {
			var seq atomic.Int64
			b.SetBytes(10 << 10)
			b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 clients
			tx0, _ := servertest.BoltTxID(e.storePath)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				c := subClient(b, e.addr, subAlice, e.alice.password)
				for pb.Next() {
					id := fmt.Sprintf("bench%s-%d", bc.name, seq.Add(1))
					msg := subBenchMessage(id)
					if err := subSend(c, subAlice, bc.rcpts, msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			// Commits on the server per message: below 1 when group commit
			// joins several submissions (each is a delivery and a Sent copy).
			if tx1, err := servertest.BoltTxID(e.storePath); err == nil && tx1 > tx0 {
				b.ReportMetric(float64(tx1-tx0)/float64(b.N), "commits/msg")
			}
		})
	}
}

// subBenchMessage is a 10 KB text message.
func subBenchMessage(id string) []byte {
	hdr := "From: " + subAlice + "\r\nTo: " + subBob + "\r\nSubject: bench\r\nMessage-ID: <" + id +
		"@example.org>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n"
	line := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
	msg := []byte(hdr)
	for len(msg) < 10<<10 {
		msg = append(msg, line...)
	}
	return msg
}
