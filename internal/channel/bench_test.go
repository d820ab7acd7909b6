package channel

import (
	"context"
	"io"
	"runtime"
	"testing"
)

func benchServer(b *testing.B, handle func(*Conn)) (*testServer, ClientConfig) {
	s := startServer(b, ServerConfig{TLS: newTestCA(b, "bench").serverTLS()}, handle)
	return s, s.client(b, "bench")
}

// BenchmarkHandshake: TCP connect, TLS 1.3 and Noise IK over loopback, both
// sides in this process.
func BenchmarkHandshake(b *testing.B) {
	s, cfg := benchServer(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := Dial(ctx, s.addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkRoundTrip: one 1 KB message to an echo server and back.
func BenchmarkRoundTrip(b *testing.B) {
	s, cfg := benchServer(b, echo)
	c, err := Dial(context.Background(), s.addr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, got := make([]byte, 1024), make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThroughput: 1 MB writes to a server that discards them.
func BenchmarkThroughput(b *testing.B) {
	done := make(chan int64, 1)
	s, cfg := benchServer(b, func(c *Conn) {
		n, _ := io.Copy(io.Discard, c)
		done <- n
	})
	c, err := Dial(context.Background(), s.addr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 1<<20)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var sent int64
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		sent += int64(len(msg))
	}
	c.Close()
	if n := <-done; n != sent {
		b.Fatalf("server received %d of %d bytes", n, sent)
	}
}

// BenchmarkIdleConnMemory opens 1,000 channels and reports the memory they
// hold while idle. Both ends live in this process, so B/conn-pair counts a
// client Conn plus a server Conn whose goroutine is parked in Read (what an
// idle HTTP keep-alive connection looks like).
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 1000
	s, cfg := benchServer(b, func(c *Conn) {
		var one [1]byte // a small reader, like net/http's background read
		for {
			if _, err := c.Read(one[:]); err != nil {
				return
			}
		}
	})
	ctx := context.Background()
	for b.Loop() {
		before := memInUse()
		conns := make([]*Conn, 0, n)
		for range n {
			c, err := Dial(ctx, s.addr, cfg)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		waitLiveB(b, s.ln, n)
		after := memInUse()
		b.ReportMetric(float64(after-before)/n, "B/conn-pair")
		for _, c := range conns {
			c.Close()
		}
		waitLiveB(b, s.ln, 0)
	}
}

func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

func waitLiveB(b *testing.B, ln *Listener, n int) {
	for i := 0; ln.Live() != n; i++ {
		if i > 10000 {
			b.Fatalf("live = %d, want %d", ln.Live(), n)
		}
		runtime.Gosched()
		if i%100 == 99 {
			memInUse() // give closing goroutines time
		}
	}
}
