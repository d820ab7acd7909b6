package bolt

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"
)

// committer implements group commit. bbolt's own db.Batch waits up to
// MaxBatchDelay for company, which costs every lone writer 10 ms; here a
// single goroutine takes whatever is pending the moment the previous commit
// ends, so a lone writer pays one fsync and N concurrent writers share one.
//
// Every request function must depend only on the transaction (no side
// effects outside it) and set its outputs afresh on each run, because a
// batch is re-run without any request that fails: a failed request may have
// written part of its changes, and bbolt has no savepoints, so the only way
// to drop them is to roll the transaction back and apply the others again.
type committer struct {
	db       *bbolt.DB
	maxBatch int
	reqs     chan *request

	commits  atomic.Uint64 // transactions committed, for tests and metrics
	requests atomic.Uint64 // requests carried by them

	mu     sync.RWMutex // held for reading while sending, so close can drain
	closed bool
	done   chan struct{}
}

type request struct {
	fn   func(tx *bbolt.Tx) error
	err  error
	done chan struct{}
}

// errRetry aborts a transaction in which one request failed.
var errRetry = errors.New("bolt: retry batch")

func newCommitter(db *bbolt.DB, maxBatch int) *committer {
	c := &committer{db: db, maxBatch: maxBatch, reqs: make(chan *request, maxBatch), done: make(chan struct{})}
	go c.loop()
	return c
}

// do queues fn and waits for its durable commit. Once queued a request is
// always carried out, so callers do not abandon it on cancellation: an
// abandoned request could still commit after its caller reported failure.
func (c *committer) do(fn func(tx *bbolt.Tx) error) error {
	r := &request{fn: fn, done: make(chan struct{})}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	c.reqs <- r
	c.mu.RUnlock()
	<-r.done
	return r.err
}

// close refuses new requests, lets the queued ones finish and stops the loop.
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.closed = true
	close(c.reqs)
	c.mu.Unlock()
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	batch := make([]*request, 0, c.maxBatch)
	for r := range c.reqs {
		batch = c.gather(append(batch[:0], r))
		c.run(batch)
		c.commits.Add(1)
		c.requests.Add(uint64(len(batch)))
		clear(batch)
	}
}

// gather adds whatever else is pending to batch. The writers answered by
// the previous commit wake one by one, so the first request often arrives
// alone; yielding the processor while requests keep arriving (a few
// microseconds) lets the rest join this commit instead of waiting a whole
// fsync for the next one.
func (c *committer) gather(batch []*request) []*request {
	for len(batch) < c.maxBatch {
		n := len(batch)
	drain:
		for len(batch) < c.maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					return batch
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) == n && n > 1 {
			return batch
		}
		if len(batch) == n {
			// A lone request: yield once in case others are about to come.
			runtime.Gosched()
			if len(c.reqs) == 0 {
				return batch
			}
			continue
		}
		runtime.Gosched()
	}
	return batch
}

// run commits batch, dropping failed requests until the rest commit.
func (c *committer) run(batch []*request) {
	pending := batch
	for len(pending) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, r := range pending {
				if r.err = apply(r.fn, tx); r.err != nil {
					failed = i
					return errRetry
				}
			}
			return nil
		})
		if failed >= 0 {
			close(pending[failed].done)
			// Copy: pending aliases batch, which the caller reuses.
			pending = append(append([]*request(nil), pending[:failed]...), pending[failed+1:]...)
			continue
		}
		for _, r := range pending {
			r.err = err
			close(r.done)
		}
		return
	}
}

// apply runs fn, turning a panic into an error so one bad request cannot
// take the committer (and every other writer) down.
func apply(fn func(tx *bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bolt: internal error: %v", p)
		}
	}()
	return fn(tx)
}
