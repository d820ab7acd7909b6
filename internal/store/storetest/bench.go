package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"smessenger/internal/store"
)

// RunBenchmarks measures the hot paths of a store: durable appends of a 10 KB
// message with 1 and 16 concurrent writers (reported as appends/s), listing
// the metadata of 10,000 messages and reading 1,000 events.
func RunBenchmarks(b *testing.B, newStore func(b *testing.B) store.Store) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("Append10KB/writers=%d", writers), func(b *testing.B) {
			benchAppend(b, newStore(b), writers)
		})
	}
	// Fixtures are built once per benchmark, not once per b.N round.
	var (
		listOnce sync.Once
		listS    store.Store
		listID   store.AccountID
	)
	parent := b // fixture stores live as long as RunBenchmarks
	b.Run("List10000", func(b *testing.B) {
		listOnce.Do(func() {
			listS = newStore(parent)
			listID = newAccount(b, listS, 0).ID
			fill(b, listS, listID, 10000, 256)
		})
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ms, err := listS.ListMessages(ctx, listID, "INBOX", 0)
			if err != nil || len(ms) != 10000 {
				b.Fatalf("ListMessages: %d, %v", len(ms), err)
			}
		}
	})
	var (
		evOnce sync.Once
		evS    store.Store
		evID   store.AccountID
	)
	b.Run("EventsSince", func(b *testing.B) {
		evOnce.Do(func() {
			evS = newStore(parent)
			evID = newAccount(b, evS, 0).ID
			fill(b, evS, evID, 1000, 64)
		})
		ctx := context.Background()
		last, err := evS.LastEventSeq(ctx, evID)
		if err != nil || last < 1000 {
			b.Fatalf("LastEventSeq: %d, %v", last, err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			evs, err := evS.EventsSince(ctx, evID, last-1000, 1000)
			if err != nil || len(evs) != 1000 {
				b.Fatalf("EventsSince: %d, %v", len(evs), err)
			}
		}
	})
}

// benchAppend runs b.N appends of a 10 KB body spread over writers goroutines.
func benchAppend(b *testing.B, s store.Store, writers int) {
	ctx := context.Background()
	id := newAccount(b, s, 0).ID
	body := make([]byte, 10*1024)
	_, _ = rand.Read(body)
	nm := store.NewMessage{Size: int64(len(body)), HeaderBlob: body[:512], BodyBlob: body}
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Append(ctx, id, "INBOX", nm); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// fill appends n messages with 16 concurrent writers.
func fill(b *testing.B, s store.Store, id store.AccountID, n, size int) {
	ctx := context.Background()
	body := make([]byte, size)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				nm := store.NewMessage{Size: int64(size), HeaderBlob: body[:size/4], BodyBlob: body, Flags: []string{`\Seen`}}
				if _, err := s.Append(ctx, id, "INBOX", nm); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("fill: %v", err)
	}
}
