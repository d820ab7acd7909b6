package bridge

import (
	"context"
	"sort"
	"sync"
)

// Bounds of background prefetch (OpenConfig.PrefetchMessages and
// PrefetchBytes override them).
const (
	// DefaultPrefetchMessages: only the newest 2,000 messages of each
	// mailbox are prefetched; what a client opens among older ones is
	// downloaded then. This bounds the disk the body cache takes and the
	// first sync's bandwidth for a mailbox of any size.
	DefaultPrefetchMessages = 2000
	// DefaultPrefetchBytes: one prefetch run downloads at most 256 MiB
	// (by message size); the next run, after the next new mail or
	// reconnect, goes on with the rest.
	DefaultPrefetchBytes = 256 << 20
)

// prefetchLoop downloads bodies that are not cached yet in the background,
// newest first (INBOX before other mailboxes), with a few workers, so that
// opening a message is instant while the first sync's cost stays bounded:
// only the newest PrefetchMessages of each mailbox, and PrefetchBytes per
// run. It wakes on kickPrefetch.
func (a *Account) prefetchLoop(ctx context.Context) {
	workers := a.cfg.PrefetchWorkers
	if workers == 0 {
		workers = 2
	}
	for {
		select {
		case <-a.prefetch:
		case <-ctx.Done():
			return
		}
		todo := a.prefetchList()
		jobs := make(chan prefetchJob)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					a.mu.RLock()
					has := j.e.hasBody
					a.mu.RUnlock()
					if has {
						continue
					}
					_, err := a.flights.do(j.e.id, func() ([]byte, error) {
						return a.downloadBody(ctx, j.mbID, j.e)
					})
					if err != nil && !isGone(err) && ctx.Err() == nil {
						a.log.Debug("bridge: prefetch paused", "err", err)
					}
				}
			}()
		}
	feed:
		for _, j := range todo {
			select {
			case jobs <- j:
			case <-ctx.Done():
				break feed
			}
		}
		close(jobs)
		wg.Wait()
	}
}

type prefetchJob struct {
	mbID uint64
	e    *entry
}

// prefetchList returns the uncached messages among the newest
// PrefetchMessages of each mailbox, INBOX first, newest first, up to
// PrefetchBytes in all.
func (a *Account) prefetchList() []prefetchJob {
	perBox := a.cfg.PrefetchMessages
	if perBox == 0 {
		perBox = DefaultPrefetchMessages
	}
	budget := a.cfg.PrefetchBytes
	if budget == 0 {
		budget = DefaultPrefetchBytes
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	ids := make([]uint64, 0, len(a.boxes))
	for id := range a.boxes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		bi, bj := a.boxes[ids[i]].info.Name, a.boxes[ids[j]].info.Name
		if (bi == "INBOX") != (bj == "INBOX") {
			return bi == "INBOX"
		}
		return bi < bj
	})
	var out []prefetchJob
	var total int64
	for _, id := range ids {
		msgs := a.boxes[id].msgs
		low := 0
		if perBox > 0 && len(msgs) > perBox {
			low = len(msgs) - perBox
		}
		for i := len(msgs) - 1; i >= low; i-- {
			if msgs[i].hasBody {
				continue
			}
			if budget > 0 && total+msgs[i].size > budget && len(out) > 0 {
				return out
			}
			total += msgs[i].size
			out = append(out, prefetchJob{id, msgs[i]})
		}
	}
	return out
}

// kickPrefetch wakes the prefetcher without blocking.
func (a *Account) kickPrefetch() {
	select {
	case a.prefetch <- struct{}{}:
	default:
	}
}
