package relay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/internal/store/redis"
	"smessenger/internal/testutil/redistest"
)

// relayChildEnv tells a re-executed test binary to run the relay: its value
// is "bolt:<path>|<sink addr>" or "redis:<url>|<sink addr>".
const relayChildEnv = "SMSG_RELAY_CRASH_CHILD"

const (
	relayCrashEntries = 100
	relayCrashKills   = 8
	relayCrashWorkers = 6
	relayCrashLease   = 2 * time.Second // longer than any one delivery here
	relayCrashLimit   = 40 * time.Second
	relaySinkDelay    = 30 * time.Millisecond // slow enough for kills to land mid-delivery
)

// TestRelayCrashChild is not a test: it is the relay process of the crash
// tests. It works the queue until the queue is empty, then exits 0.
func TestRelayCrashChild(t *testing.T) {
	spec := os.Getenv(relayChildEnv)
	if spec == "" {
		t.Skip("helper process for the crash tests")
	}
	storeSpec, sink, _ := strings.Cut(spec, "|")
	kind, arg, _ := strings.Cut(storeSpec, ":")
	ctx := context.Background()
	var st store.Store
	var err error
	if kind == "bolt" {
		st, err = bolt.Open(arg, bolt.Options{LockTimeout: 10 * time.Second})
	} else {
		st, err = redis.Open(ctx, arg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	st = recordingStore{st}
	r := New(Config{
		Hostname: "mx.example.org", Workers: relayCrashWorkers, LeaseTTL: relayCrashLease, PollInterval: 5 * time.Millisecond,
		Routes: map[string]string{"one.test": sink, "two.test": sink},
	}, st, nil)
	go r.Run(ctx)
	for {
		time.Sleep(50 * time.Millisecond)
		if q, err := st.ListQueue(ctx, false); err == nil && len(q) == 0 {
			os.Exit(0)
		}
	}
}

// recordingStore is the real store with an observer: after each durable
// UpdateLeased it prints "DONE <address>" for every recipient marked done,
// so the parent knows when the relay's record of a delivery was made.
// Writes to the stdout pipe survive a SIGKILL of the writer.
type recordingStore struct{ store.Store }

func (s recordingStore) UpdateLeased(ctx context.Context, e store.QueueEntry, owner string) error {
	if err := s.Store.UpdateLeased(ctx, e, owner); err != nil {
		return err
	}
	var b strings.Builder
	for _, rc := range e.Recipients {
		if rc.Done {
			b.WriteString("DONE " + rc.Address + "\n")
		}
	}
	_, _ = os.Stdout.WriteString(b.String())
	return nil
}

// countingSink is the remote MX of the crash tests: it records when it
// accepted each message for each recipient, slowly enough that kills land
// in the middle of deliveries.
type countingSink struct {
	mu  sync.Mutex
	got map[string][]sinkDelivery
}

// sinkDelivery spans one message's acceptance: from the end of its data
// to the moment the 250 was about to be written.
type sinkDelivery struct{ received, accepted time.Time }

func (s *countingSink) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &countingSess{s: s}, nil
}

type countingSess struct {
	s     *countingSink
	rcpts []string
}

func (c *countingSess) Reset()                               { c.rcpts = nil }
func (c *countingSess) Logout() error                        { return nil }
func (c *countingSess) Mail(string, *smtp.MailOptions) error { return nil }
func (c *countingSess) Rcpt(to string, _ *smtp.RcptOptions) error {
	c.rcpts = append(c.rcpts, to)
	return nil
}
func (c *countingSess) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	received := time.Now()
	time.Sleep(relaySinkDelay + time.Duration(rand.IntN(50))*time.Millisecond)
	d := sinkDelivery{received: received, accepted: time.Now()}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, a := range c.rcpts {
		c.s.got[a] = append(c.s.got[a], d)
	}
	return nil
}

func (s *countingSink) snapshot() map[string][]sinkDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]sinkDelivery, len(s.got))
	for k, v := range s.got {
		out[k] = append([]sinkDelivery(nil), v...)
	}
	return out
}

func startCountingSink(t *testing.T) (*countingSink, string) {
	s := &countingSink{got: map[string][]sinkDelivery{}}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.test"
	srv.ErrorLog = nopLog{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s, l.Addr().String()
}

// relayCrashRecipients are the recipients of entry i: two domains, so an
// entry takes two SMTP transactions and a kill can fall between them.
func relayCrashRecipients(i int) []string {
	return []string{fmt.Sprintf("a%d@one.test", i), fmt.Sprintf("b%d@one.test", i), fmt.Sprintf("c%d@two.test", i)}
}

func relayEnqueueCrash(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	a, err := st.CreateAccount(ctx, "sender@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < relayCrashEntries; i++ {
		var rs []store.QueueRecipient
		for _, r := range relayCrashRecipients(i) {
			rs = append(rs, store.QueueRecipient{Address: r})
		}
		_, err := st.Enqueue(ctx, store.QueueEntry{
			Account: a.ID, From: "sender@example.org", Recipients: rs,
			Payload: []byte(fmt.Sprintf("From: sender@example.org\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i)),
			Created: time.Now(), Expires: time.Now().Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// relayRecords collects the children's "DONE <address>" lines: the first
// time the parent saw each recipient recorded as done.
type relayRecords struct {
	mu   sync.Mutex
	done map[string]time.Time
}

func (r *relayRecords) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		a, ok := strings.CutPrefix(sc.Text(), "DONE ")
		if !ok {
			continue
		}
		r.mu.Lock()
		if _, seen := r.done[a]; !seen {
			r.done[a] = time.Now()
		}
		r.mu.Unlock()
	}
}

// runRelayCrash runs relay processes on spec, killing them at random
// moments, until one finds the queue empty and exits. It returns the
// number of kills and when each recipient was first recorded as done.
func runRelayCrash(t *testing.T, spec string) (int, map[string]time.Time) {
	var logs strings.Builder
	var mu sync.Mutex
	recs := &relayRecords{done: map[string]time.Time{}}
	var readers sync.WaitGroup
	exited := make(chan error, 1)
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command(os.Args[0], "-test.run=^TestRelayCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), relayChildEnv+"="+spec)
		cmd.Stderr = &lockedWriter{mu: &mu, w: &logs}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			recs.read(out)
		}()
		c := cmd
		go func() {
			// Wait closes the pipe only after the reader hit EOF.
			readers.Wait()
			exited <- c.Wait()
		}()
	}
	deadline := time.Now().Add(relayCrashLimit)
	kills := 0
	start()
	for {
		select {
		case err := <-exited:
			if err != nil {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("relay child failed: %v\n%s", err, logs.String())
			}
			if kills < relayCrashKills {
				t.Fatalf("the queue drained after only %d kills", kills)
			}
			return kills, recs.done
		case <-time.After(time.Duration(100+rand.IntN(200)) * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatal("relay did not drain the queue in time")
		}
		if kills < relayCrashKills {
			_ = cmd.Process.Kill()
			<-exited
			kills++
			start()
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// checkExactlyOnce: every recipient got the message, and once the relay
// had durably recorded a recipient as done, no delivery to it began again.
// A repeat before that record is the remote's 250 lost in a crash.
func checkExactlyOnce(t *testing.T, sink *countingSink, kills int, done map[string]time.Time) {
	t.Helper()
	got := sink.snapshot()
	dups := 0
	for i := 0; i < relayCrashEntries; i++ {
		for _, r := range relayCrashRecipients(i) {
			ds := got[r]
			if len(ds) == 0 {
				t.Errorf("%s never delivered", r)
				continue
			}
			dups += len(ds) - 1
			rec, ok := done[r]
			for _, d := range ds {
				if ok && d.received.After(rec) {
					t.Errorf("%s delivered again after the relay recorded it as done", r)
				}
			}
		}
	}
	// Each kill can lose at most the transactions in flight: one per worker.
	if max := kills * relayCrashWorkers * 2; dups > max {
		t.Errorf("%d repeated deliveries for %d kills (at most %d can be in flight)", dups, kills, max)
	}
	if len(done) < relayCrashEntries*3/2 {
		t.Errorf("only %d recipients recorded as done: the check above proves little", len(done))
	}
	t.Logf("%d kills, %d recipients, %d repeated deliveries (250s lost in a crash)", kills, relayCrashEntries*3, dups)
}

func TestRelayCrashBolt(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	sink, addr := startCountingSink(t)
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	relayEnqueueCrash(t, st)
	st.Close()
	kills, done := runRelayCrash(t, "bolt:"+path+"|"+addr)
	checkExactlyOnce(t, sink, kills, done)
	st, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relayCheckDrained(t, st)
}

func TestRelayCrashRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	sink, addr := startCountingSink(t)
	url := redistest.Start(t)
	st, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relayEnqueueCrash(t, st)
	kills, done := runRelayCrash(t, "redis:"+url+"|"+addr)
	checkExactlyOnce(t, sink, kills, done)
	relayCheckDrained(t, st)
}

func relayCheckDrained(t *testing.T, st store.Store) {
	t.Helper()
	for _, dead := range []bool{false, true} {
		q, err := st.ListQueue(context.Background(), dead)
		if err != nil || len(q) != 0 {
			t.Fatalf("queue (dead=%v) not empty: %v %d", dead, err, len(q))
		}
	}
}
