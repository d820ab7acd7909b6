package api

import (
	"sync"
	"testing"
	"time"
)

// gateState reads the gate's counters under its lock.
func gateState(g *writeGate) (inflight, held, last int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight, g.held, g.last
}

// waitHeld polls until n writes are held, bounded in time.
func waitHeld(t *testing.T, g *writeGate, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, held, _ := gateState(g); held == n {
			return
		}
		if time.Now().After(deadline) {
			_, held, _ := gateState(g)
			t.Fatalf("%d writes held, want %d", held, n)
		}
	}
}

// enterAsync runs enter in a goroutine; the channel yields enter's result
// once it returned.
func enterAsync(g *writeGate) chan time.Time {
	done := make(chan time.Time, 1)
	go func() { done <- g.enter() }()
	return done
}

func mustPass(t *testing.T, done chan time.Time, what string) time.Time {
	t.Helper()
	select {
	case start := <-done:
		return start
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still held", what)
		return time.Time{}
	}
}

func mustBeHeld(t *testing.T, done chan time.Time, what string) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s: let through too early", what)
	default:
	}
}

type groupLog struct {
	mu    sync.Mutex
	sizes []int
}

func (l *groupLog) observe(v float64) {
	l.mu.Lock()
	l.sizes = append(l.sizes, int(v))
	l.mu.Unlock()
}

func (l *groupLog) get() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.sizes...)
}

// holding returns a gate that holds concurrent writes whatever their speed.
func holding(gap, maxWait time.Duration, maxHeld int) *writeGate {
	return newWriteGate(gap, maxWait, maxHeld, 0)
}

func TestWriteGateLoneWriterPasses(t *testing.T) {
	g := holding(time.Hour, time.Hour, 256)
	for i := 0; i < 3; i++ {
		// With hour-long waits, only the fast path can return.
		start := mustPass(t, enterAsync(g), "lone writer")
		if inflight, held, _ := gateState(g); inflight != 1 || held != 0 {
			t.Fatalf("inflight %d held %d", inflight, held)
		}
		g.exit(start)
	}
	if g.timer != nil {
		t.Fatal("a lone writer armed the timer")
	}
	var nilGate *writeGate
	nilGate.exit(nilGate.enter()) // a nil gate lets everything through
}

// TestWriteGateFastWritesPass: while writes are fast on average, concurrent
// writes are not held.
func TestWriteGateFastWritesPass(t *testing.T) {
	var log groupLog
	g := newWriteGate(time.Hour, time.Hour, 256, time.Hour)
	g.observe = log.observe
	a := g.enter()
	b := mustPass(t, enterAsync(g), "second concurrent write")
	c := mustPass(t, enterAsync(g), "third concurrent write")
	g.exit(a)
	g.exit(b)
	g.exit(c)
	if got := log.get(); len(got) != 3 || got[0]+got[1]+got[2] != 3 {
		t.Fatalf("groups %v, want three of one", got)
	}
}

// TestWriteGateGroupsWritersBehindACommit: when writes are slow, writes
// arriving while another is in flight wait for it, then go together.
func TestWriteGateGroupsWritersBehindACommit(t *testing.T) {
	var log groupLog
	g := holding(5*time.Millisecond, time.Second, 256)
	g.observe = log.observe
	a := g.enter() // in flight
	b, c := enterAsync(g), enterAsync(g)
	waitHeld(t, g, 2)
	mustBeHeld(t, b, "b while a is in flight")
	mustBeHeld(t, c, "c while a is in flight")
	g.exit(a)
	sb, sc := mustPass(t, b, "b"), mustPass(t, c, "c")
	if inflight, held, last := gateState(g); inflight != 2 || held != 0 || last != 2 {
		t.Fatalf("inflight %d held %d last %d, want 2 0 2", inflight, held, last)
	}
	if got := log.get(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("groups %v, want [1 2]", got)
	}
	// After a group of two, a lone arrival waits for company (at most the
	// gap) even with nothing in flight, then goes alone.
	g.exit(sb)
	g.exit(sc)
	g.exit(mustPass(t, enterAsync(g), "arrival after a group"))
	if got := log.get(); len(got) != 3 || got[2] != 1 {
		t.Fatalf("groups %v, want [1 2 1]", got)
	}
}

// TestWriteGateLearnsSpeed: the gate starts holding once writes average
// slowWrite or more.
func TestWriteGateLearnsSpeed(t *testing.T) {
	g := newWriteGate(time.Millisecond, 4*time.Millisecond, 256, 2*time.Millisecond)
	for i := 0; i < 20; i++ {
		start := g.enter()
		time.Sleep(3 * time.Millisecond) // a slow write
		g.exit(start)
	}
	g.mu.Lock()
	avg := g.avg
	g.mu.Unlock()
	if avg < 2*time.Millisecond {
		t.Fatalf("average write time %v after 3 ms writes", avg)
	}
	a := g.enter()
	b := enterAsync(g)
	waitHeld(t, g, 1) // a concurrent write is now held
	g.exit(a)
	g.exit(mustPass(t, b, "held write"))
}

// TestWriteGateMaxWait: however long the quiet gap, a held group goes once
// the store has been idle for maxWait.
func TestWriteGateMaxWait(t *testing.T) {
	g := holding(time.Hour, 20*time.Millisecond, 256)
	a := g.enter()
	b := enterAsync(g)
	waitHeld(t, g, 1)
	g.exit(a)
	g.exit(mustPass(t, b, "held write after maxWait"))
}

// TestWriteGateMaxHeld: a full group goes at once, even while another
// write is in flight (it queues in the store instead).
func TestWriteGateMaxHeld(t *testing.T) {
	g := holding(time.Hour, time.Hour, 3)
	a := g.enter()
	var held []chan time.Time
	for i := 0; i < 2; i++ {
		held = append(held, enterAsync(g))
	}
	waitHeld(t, g, 2)
	held = append(held, enterAsync(g))
	var starts []time.Time
	for i, d := range held {
		starts = append(starts, mustPass(t, d, "write "+string(rune('0'+i))))
	}
	g.exit(a)
	for _, s := range starts {
		g.exit(s)
	}
	if inflight, held, _ := gateState(g); inflight != 0 || held != 0 {
		t.Fatalf("inflight %d held %d at rest", inflight, held)
	}
}

// TestWriteGateConcurrent: many writers entering and leaving at random all
// get through, each in exactly one group, and the gate ends at rest (run
// with -race).
func TestWriteGateConcurrent(t *testing.T) {
	for _, slow := range []time.Duration{0, time.Hour} {
		var log groupLog
		g := newWriteGate(200*time.Microsecond, time.Millisecond, 8, slow)
		g.observe = log.observe
		const writers, rounds = 32, 20
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Go(func() {
				for r := 0; r < rounds; r++ {
					start := g.enter()
					time.Sleep(time.Duration(w%3) * 100 * time.Microsecond)
					g.exit(start)
				}
			})
		}
		done := make(chan time.Time)
		go func() { wg.Wait(); close(done) }()
		mustPass(t, done, "writers")
		if inflight, held, _ := gateState(g); inflight != 0 || held != 0 {
			t.Fatalf("slow=%v: inflight %d held %d at rest", slow, inflight, held)
		}
		total := 0
		for _, n := range log.get() {
			if n < 1 || n > 8 {
				t.Fatalf("slow=%v: group of %d", slow, n)
			}
			total += n
		}
		if total != writers*rounds {
			t.Fatalf("slow=%v: groups carry %d writes, want the %d made", slow, total, writers*rounds)
		}
	}
}
