package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smessenger/internal/store"
)

// BenchmarkGroupCommit reports how many appends share one commit (fsync)
// with 16 writers, the figure that group commit exists for.
func BenchmarkGroupCommit(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "store.db"))
	defer s.Close()
	ctx := context.Background()
	a, err := s.CreateAccount(ctx, "batch@example.org", 0)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 10*1024)
	nm := store.NewMessage{Size: int64(len(body)), HeaderBlob: body[:512], BodyBlob: body}
	c0, r0 := s.c.commits.Load(), s.c.requests.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Append(ctx, a.ID, "INBOX", nm); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	commits, reqs := s.c.commits.Load()-c0, s.c.requests.Load()-r0
	b.ReportMetric(float64(reqs)/float64(commits), "appends/commit")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// TestGroupCommitIsolation runs concurrent appends of which some must fail
// (unknown mailbox, quota): a failing request must not take the others of
// its batch down, nor leave anything behind.
func TestGroupCommitIsolation(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	ctx := context.Background()
	const fits = 40
	a, err := s.CreateAccount(ctx, "iso@example.org", fits*100)
	if err != nil {
		t.Fatal(err)
	}
	start, _ := s.LastEventSeq(ctx, a.ID)
	var ok, quota, missing atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				mbox := "INBOX"
				if (w+i)%3 == 0 {
					mbox = "Missing"
				}
				_, err := s.Append(ctx, a.ID, mbox, store.NewMessage{Size: 100, BodyBlob: []byte("x")})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrQuotaExceeded):
					quota.Add(1)
				case errors.Is(err, store.ErrMailboxNotFound):
					missing.Add(1)
				default:
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	if ok.Load() != fits || missing.Load() != 32 || quota.Load() != 96-32-fits {
		t.Fatalf("ok %d, quota %d, missing %d", ok.Load(), quota.Load(), missing.Load())
	}
	acc, _ := s.GetAccount(ctx, a.ID)
	mb, _ := s.GetMailbox(ctx, a.ID, "INBOX")
	last, _ := s.LastEventSeq(ctx, a.ID)
	if acc.UsedBytes != fits*100 || mb.Messages != fits || last-start != fits {
		t.Fatalf("used %d, messages %d, events %d; want %d messages", acc.UsedBytes, mb.Messages, last-start, fits)
	}
	if s.c.commits.Load() >= s.c.requests.Load() {
		t.Logf("no batching happened (%d commits for %d requests)", s.c.commits.Load(), s.c.requests.Load())
	}
}

// TestManyWaiters parks 10,000 WaitEvents calls on one account and wakes
// them all with a single append.
func TestManyWaiters(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := s.CreateAccount(ctx, "idle@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := s.LastEventSeq(ctx, a.ID)
	const n = 10000
	var wg, parked sync.WaitGroup
	var woke atomic.Int64
	parked.Add(n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parked.Done()
			if got, err := s.WaitEvents(ctx, a.ID, seq); err == nil && got == seq+1 {
				woke.Add(1)
			}
		}()
	}
	parked.Wait()
	time.Sleep(50 * time.Millisecond) // let them reach the channel wait
	if _, err := s.Append(ctx, a.ID, "INBOX", store.NewMessage{Size: 1}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if woke.Load() != n {
		t.Fatalf("%d of %d waiters woke with the new seq", woke.Load(), n)
	}
}
