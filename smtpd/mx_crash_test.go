package smtpd

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/dnsres"
	"smessenger/internal/logging"
	"smessenger/internal/store"
	"smessenger/internal/store/bolt"
	"smessenger/internal/store/redis"
	"smessenger/internal/testutil/redistest"
	"smessenger/pgp"
)

// mxChildEnv names the store a re-executed test binary serves the MX on:
// "bolt:<path>" or "redis:<url>".
const mxChildEnv = "SMSG_MX_CRASH_CHILD"

// Crash-test parameters: the issue asks for 1,000 messages from 20
// concurrent senders and at least 20 kills.
const (
	mxCrashMessages = 1000
	mxCrashSenders  = 20
	mxCrashKills    = 20
	mxCrashLimit    = 40 * time.Second // the whole run, kills and sending
)

// mxSenderIP is the loopback address the crash senders connect from, so the
// privacy scan looks for an address nothing else would put in the store.
var mxSenderIP = net.IPv4(127, 0, 0, 77)

// TestMXCrashChild is not a test: it is the MX process of the crash tests,
// run by re-executing the test binary with mxChildEnv set. It prints its
// address and serves until it is killed.
func TestMXCrashChild(t *testing.T) {
	spec := os.Getenv(mxChildEnv)
	if spec == "" {
		t.Skip("helper process for the crash tests")
	}
	ctx := context.Background()
	var st store.Store
	var err error
	switch kind, arg, _ := strings.Cut(spec, ":"); kind {
	case "bolt":
		st, err = bolt.Open(arg, bolt.Options{LockTimeout: 10 * time.Second})
	case "redis":
		st, err = redis.Open(ctx, arg)
	default:
		err = fmt.Errorf("bad spec %q", spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open store:", err)
		os.Exit(3)
	}
	m := NewMX(MXConfig{
		Domains: []string{"example.org"}, Hostname: "mx.example.org", Resolver: dnsres.NewStatic(),
		ConnsPerSource: 200, CommandsPerMinute: 1 << 30,
	}, st, logging.New(os.Stderr, -4))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(4)
	}
	fmt.Printf("ADDR %s\n", l.Addr())
	_ = m.Serve(l)
	os.Exit(0)
}

// mxChild is one running MX process.
type mxChild struct {
	cmd  *exec.Cmd
	addr string
}

// mxCrashRig starts, kills and restarts MX processes on one store.
type mxCrashRig struct {
	t    *testing.T
	spec string
	logs *mxLogBuffer // every child's stderr, for the privacy scan

	mu    sync.Mutex
	child *mxChild
	addr  atomic.Pointer[string]
}

func (r *mxCrashRig) start() {
	r.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMXCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), mxChildEnv+"="+r.spec)
	cmd.Stderr = r.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		line, _ := br.ReadString('\n')
		addrc <- strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
		_, _ = io.Copy(io.Discard, br)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		r.t.Fatal("MX child did not start")
	}
	if addr == "" {
		_ = cmd.Wait()
		r.t.Fatalf("MX child failed: %s", r.logs.String())
	}
	r.mu.Lock()
	r.child = &mxChild{cmd: cmd, addr: addr}
	r.mu.Unlock()
	r.addr.Store(&addr)
}

// kill ends the running child with SIGKILL, as a crash would.
func (r *mxCrashRig) kill() {
	r.mu.Lock()
	c := r.child
	r.child = nil
	r.mu.Unlock()
	if c == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// mxCrashSender sends its share of messages, each until it got a 250,
// reconnecting to whichever child runs. acked[n] is set only after the 250
// to the final dot was read.
func mxCrashSender(r *mxCrashRig, ids []int, acked []atomic.Bool, deadline time.Time) error {
	var c *smtp.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: mxSenderIP}, Timeout: 2 * time.Second}
	for _, n := range ids {
		for !acked[n].Load() {
			if time.Now().After(deadline) {
				return fmt.Errorf("message %d not acknowledged in time", n)
			}
			if c == nil {
				conn, err := dialer.Dial("tcp", *r.addr.Load())
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				c = smtp.NewClient(conn)
				if err := c.Hello("sender.test"); err != nil {
					c.Close()
					c = nil
					continue
				}
			}
			if err := mxSendOne(c, n); err != nil {
				c.Close()
				c = nil
				continue
			}
			acked[n].Store(true)
		}
	}
	return nil
}

func mxCrashMessage(n int) string {
	return mxTestMessage(fmt.Sprintf("CRASH-SUBJ-MARKER %d", n), fmt.Sprintf("CRASH-BODY-MARKER #%d#", n))
}

func mxSendOne(c *smtp.Client, n int) error {
	if err := c.Mail("bob@sender.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("alice@example.org", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, mxCrashMessage(n)); err != nil {
		return err
	}
	return w.Close() // nil only once the 250 was read
}

// mxSetupAlice creates alice with her public key in st.
func mxSetupAlice(t *testing.T, st store.Store) store.AccountID {
	t.Helper()
	ctx := context.Background()
	a, err := st.CreateAccount(ctx, "alice@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPublicKey(ctx, a.ID, mxAliceKey(t).PublicBinary()); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// runMXCrash sends 1,000 messages from 20 senders while killing the MX
// process at random moments, and returns which messages got a 250.
func runMXCrash(t *testing.T, r *mxCrashRig) []atomic.Bool {
	r.start()
	t.Cleanup(r.kill)
	acked := make([]atomic.Bool, mxCrashMessages)
	deadline := time.Now().Add(mxCrashLimit)
	errs := make(chan error, mxCrashSenders)
	var wg sync.WaitGroup
	for s := 0; s < mxCrashSenders; s++ {
		var ids []int
		for n := s; n < mxCrashMessages; n += mxCrashSenders {
			ids = append(ids, n)
		}
		wg.Go(func() {
			if err := mxCrashSender(r, ids, acked, deadline); err != nil {
				errs <- err
			}
		})
	}
	kills := 0
	for ; kills < mxCrashKills && time.Now().Before(deadline); kills++ {
		time.Sleep(time.Duration(10+rand.IntN(90)) * time.Millisecond)
		r.kill()
		r.start()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r.kill()
	if kills < mxCrashKills {
		t.Fatalf("only %d kills before the time limit", kills)
	}
	t.Logf("%d kills", kills)
	return acked
}

// mxCheckAcked verifies that every acknowledged message is in alice's
// INBOX and that both its blobs decrypt.
func mxCheckAcked(t *testing.T, st store.Store, acct store.AccountID, acked []atomic.Bool) {
	t.Helper()
	ctx := context.Background()
	key := mxAliceKey(t)
	metas, err := st.ListMessages(ctx, acct, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	present := map[int]bool{}
	for _, m := range metas {
		bb, err := st.BodyBlob(ctx, acct, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := pgp.OpenBodyBlob(bb, key)
		if err != nil {
			t.Fatalf("body blob of message %d does not decrypt: %v", m.ID, err)
		}
		hbs, err := st.HeaderBlobs(ctx, acct, []store.MessageID{m.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pgp.OpenHeaderBlob(hbs[0], key); err != nil {
			t.Fatalf("header blob of message %d does not decrypt: %v", m.ID, err)
		}
		var n int
		i := strings.Index(string(plain), "CRASH-BODY-MARKER #")
		if i < 0 {
			t.Fatalf("stored message without marker: %q", plain)
		}
		if _, err := fmt.Sscanf(string(plain[i:]), "CRASH-BODY-MARKER #%d#", &n); err != nil {
			t.Fatal(err)
		}
		present[n] = true
	}
	nacked := 0
	for n := range acked {
		if acked[n].Load() {
			nacked++
			if !present[n] {
				t.Errorf("message %d got a 250 but is not in the store", n)
			}
		}
	}
	if nacked != mxCrashMessages {
		t.Errorf("only %d of %d messages acknowledged", nacked, mxCrashMessages)
	}
	t.Logf("%d acknowledged, %d stored (duplicates are 250s lost in a crash)", nacked, len(metas))
}

// mxPrivacyForbidden are byte strings that must appear nowhere in the
// store or the logs: the senders' address in its text forms and plaintext
// from the subjects and bodies.
var mxPrivacyForbidden = []string{
	"127.0.0.77", "127.000.000.077", "77.0.0.127", "::ffff:127.0.0.77", "::ffff:7f00:4d",
	"CRASH-SUBJ-MARKER", "CRASH-BODY-MARKER", "bob@sender.test",
}

func mxScanForbidden(t *testing.T, what string, data []byte) {
	t.Helper()
	for _, f := range mxPrivacyForbidden {
		if strings.Contains(string(data), f) {
			t.Errorf("%s contains %q", what, f)
		}
	}
}

func TestMXCrashBolt(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct := mxSetupAlice(t, st)
	st.Close()
	r := &mxCrashRig{t: t, spec: "bolt:" + path, logs: &mxLogBuffer{}}
	acked := runMXCrash(t, r)
	st, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mxCheckAcked(t, st, acct, acked)
	// Privacy: every byte of the bbolt file, and every log line.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < mxCrashMessages*1000 {
		t.Fatalf("bbolt file too small (%d bytes) to hold the messages", len(raw))
	}
	mxScanForbidden(t, "bbolt file", raw)
	mxScanForbidden(t, "MX logs", []byte(r.logs.String()))
	if !strings.Contains(r.logs.String(), "message accepted") {
		t.Fatal("children logged nothing; the log scan proves nothing")
	}
}

func TestMXCrashRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	srv := redistest.StartServer(t, t.TempDir())
	ctx := context.Background()
	st, err := redis.Open(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct := mxSetupAlice(t, st)
	r := &mxCrashRig{t: t, spec: "redis:" + srv.URL(), logs: &mxLogBuffer{}}
	acked := runMXCrash(t, r)
	mxCheckAcked(t, st, acct, acked)
	mxScanForbidden(t, "MX logs", []byte(r.logs.String()))
	// Privacy: every key's serialized value (SCAN + DUMP), and the
	// append-only files on disk.
	dump := mxRedisDump(t, srv.URL())
	if len(dump) < mxCrashMessages*1000 {
		t.Fatalf("redis dump too small (%d bytes) to hold the messages", len(dump))
	}
	mxScanForbidden(t, "redis DUMP", dump)
	_ = filepath.Walk(srv.Dir(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			mxScanForbidden(t, "redis file "+filepath.Base(p), b)
		}
		return nil
	})
}

// mxRedisDump returns the concatenated DUMP serializations of every key.
func mxRedisDump(t *testing.T, url string) []byte {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	var out []byte
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			d, err := c.Dump(ctx, k).Result()
			if err != nil && err != goredis.Nil {
				t.Fatal(err)
			}
			out = append(append(out, k...), d...)
		}
		if cursor = next; cursor == 0 {
			return out
		}
	}
}
