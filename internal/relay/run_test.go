package relay

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// relayWait polls cond until it holds or the bounded wait ends.
func relayWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Run's workers pick up entries enqueued before and while they run,
// deliver each recipient once, retry a deferral when its time comes, and
// stop when the context ends.
func TestRelayRunWorkers(t *testing.T) {
	e := setupRelay(t)
	e.r.cfg.Workers = 3
	e.r.cfg.PollInterval = 10 * time.Millisecond
	e.remote.tempLeft["slow@remote.test"] = 1
	for i := 0; i < 5; i++ {
		e.enqueue(t, fmt.Sprintf("a%d@remote.test", i), fmt.Sprintf("b%d@remote.test", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.r.Run(ctx) }()
	for i := 5; i < 10; i++ { // enqueued while the workers run
		e.enqueue(t, fmt.Sprintf("a%d@remote.test", i), fmt.Sprintf("b%d@remote.test", i))
	}
	e.enqueue(t, "slow@remote.test")
	relayWait(t, "20 deliveries", func() bool {
		n := 0
		for i := 0; i < 10; i++ {
			n += e.remote.count(fmt.Sprintf("a%d@remote.test", i)) + e.remote.count(fmt.Sprintf("b%d@remote.test", i))
		}
		return n >= 20
	})
	relayWait(t, "the deferred entry", func() bool {
		q, _ := e.st.ListQueue(context.Background(), false)
		return len(q) == 1 && q[0].Attempts == 1
	})
	if e.remote.count("slow@remote.test") != 0 {
		t.Fatal("deferred recipient delivered before its retry time")
	}
	e.advance(time.Minute) // the backoff has passed: a worker retries
	relayWait(t, "the retry", func() bool { return e.remote.count("slow@remote.test") == 1 })
	relayWait(t, "an empty queue", func() bool {
		q, _ := e.st.ListQueue(context.Background(), false)
		return len(q) == 0
	})
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	for i := 0; i < 10; i++ {
		for _, a := range []string{fmt.Sprintf("a%d@remote.test", i), fmt.Sprintf("b%d@remote.test", i)} {
			if n := e.remote.count(a); n != 1 {
				t.Errorf("%s delivered %d times", a, n)
			}
		}
	}
	if _, err := e.st.Lease(context.Background(), "x", e.clock(), time.Minute); !isQueueEmpty(err) {
		t.Fatalf("queue not empty: %v", err)
	}
}
