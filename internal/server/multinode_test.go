package server_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"smessenger/internal/api"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/internal/store/redis"
	"smessenger/internal/testutil/redistest"
	"smessenger/pgp"
)

func openRedis(t *testing.T, url string) store.Store {
	st, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestTwoNodes runs two nodes (same keys, separate store connections) on
// one redis-server: a delivery through node A reaches a stream on node B
// within a second.
func TestTwoNodes(t *testing.T) {
	url := redistest.Start(t)
	cfg := servertest.InitDir(t, "127.0.0.1")
	a := servertest.StartConfig(t, openRedis(t, url), cfg, nil)
	b := servertest.StartConfig(t, openRedis(t, url), cfg, nil)
	alice := a.NewUser(t, "alice@example.org")
	_, tok := a.AddUser(t, "bob@example.org")
	bobB, _ := b.Client(t, tok) // bob enrols through node B
	c := tctx(t)
	if _, err := bobB.WhoAmI(c); err != nil {
		t.Fatal(err)
	}
	last, err := bobB.EventsSince(c, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var after uint64
	if len(last) > 0 {
		after = last[len(last)-1].Seq
	}
	got := make(chan store.Event, 1)
	sctx, cancel := context.WithCancel(c)
	defer cancel()
	go func() {
		_ = bobB.StreamEvents(sctx, after, func(ev store.Event) error { got <- ev; return nil })
	}()
	time.Sleep(100 * time.Millisecond) // let the stream reach its wait
	start := time.Now()
	if err := alice.Client.Deliver(c, []api.Delivery{{Recipient: "bob@example.org", Size: 1, HeaderBlob: []byte("h"), BodyBlob: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Kind != store.EventMessageAdded {
			t.Fatalf("event %+v", ev)
		}
		t.Logf("cross-node event latency %v", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("event from node A did not reach node B's stream within a second")
	}
}

// privacySession runs enrol, key publication, a sealed delivery with the
// marker in subject and body, fetches and a live stream, all through node e.
func privacySession(t *testing.T, e *servertest.Env, from, to string, marker string) {
	c := tctx(t)
	sender := e.NewUser(t, from)
	rcpt := e.NewUser(t, to)
	keyBytes, internal, err := sender.Client.LookupKey(c, to)
	if err != nil || !internal {
		t.Fatal(err)
	}
	rk, err := pgp.ReadKey(keyBytes)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("Subject: " + marker + "\r\nFrom: " + from + "\r\n\r\n" + marker + " body\r\n")
	hdr, err := pgp.Seal([]byte("Subject: "+marker+"\r\n"), []*pgp.Key{rk}, pgp.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := pgp.Seal(msg, []*pgp.Key{rk}, pgp.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan store.Event, 16)
	sctx, cancel := context.WithCancel(c)
	defer cancel()
	go func() { _ = rcpt.Client.StreamEvents(sctx, 0, func(ev store.Event) error { got <- ev; return nil }) }()
	if err := sender.Client.Deliver(c, []api.Delivery{{Recipient: to, Size: int64(len(msg)), HeaderBlob: hdr, BodyBlob: body}}); err != nil {
		t.Fatal(err)
	}
	for {
		ev := <-got
		if ev.Kind == store.EventMessageAdded {
			break
		}
	}
	list, err := rcpt.Client.ListMessages(c, "INBOX", 1)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v", err)
	}
	rc, err := rcpt.Client.BodyBlob(c, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(rc)
	rc.Close()
	opened, err := pgp.Open(buf.Bytes(), rcpt.Key, pgp.OpenOptions{})
	if err != nil || !bytes.Contains(opened.Plaintext, []byte(marker)) {
		t.Fatalf("recipient cannot read the message: %v", err)
	}
}

// forbidden are the textual forms of the loopback client addresses.
var forbidden = []string{"127.0.0.1", "::1", "[::1]", "0:0:0:0:0:0:0:1"}

func scan(t *testing.T, what string, data []byte, marker string) {
	t.Helper()
	for _, f := range append([]string{marker}, forbidden...) {
		if bytes.Contains(data, []byte(f)) {
			i := bytes.Index(data, []byte(f))
			lo := max(0, i-60)
			t.Errorf("%s contains %q: …%q…", what, f, data[lo:min(len(data), i+60)])
		}
	}
}

func TestPrivacyBolt(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/store.db"
	st, err := openBoltAt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	marker := "MARKER-" + strings.Repeat("q7", 8)
	var logs []string
	for i, host := range []string{"127.0.0.1", "[::1]"} {
		e := servertest.StartConfig(t, st, servertest.InitDir(t, host), nil)
		privacySession(t, e, "s"+string(rune('a'+i))+"@example.org", "r"+string(rune('a'+i))+"@example.org", marker)
		e.Stop(t)
		logs = append(logs, e.Logs.String())
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	scan(t, "bbolt file", data, marker)
	for _, l := range logs {
		if !strings.Contains(l, "device enrolled") {
			t.Fatal("log capture is empty: the scan would prove nothing")
		}
		scan(t, "log", []byte(l), marker)
	}
}

func TestPrivacyRedis(t *testing.T) {
	url := redistest.Start(t)
	marker := "MARKER-" + strings.Repeat("z3", 8)
	e4 := servertest.StartConfig(t, openRedis(t, url), servertest.InitDir(t, "127.0.0.1"), nil)
	e6 := servertest.StartConfig(t, openRedis(t, url), servertest.InitDir(t, "[::1]"), nil)
	privacySession(t, e4, "s4@example.org", "r4@example.org", marker)
	privacySession(t, e6, "s6@example.org", "r6@example.org", marker)
	e4.Stop(t)
	e6.Stop(t)
	opt, err := goredis.ParseURL(strings.Replace(url, "unix://", "unix://", 1))
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	c := tctx(t)
	var all bytes.Buffer
	iter := rc.Scan(c, 0, "*", 1000).Iterator()
	n := 0
	for iter.Next(c) {
		k := iter.Val()
		all.WriteString(k)
		d, err := rc.Dump(c, k).Result()
		if err != nil {
			t.Fatalf("DUMP %q: %v", k, err)
		}
		all.WriteString(d)
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d keys in redis: the scan would prove nothing", n)
	}
	scan(t, "redis dump", all.Bytes(), marker)
	scan(t, "log A", []byte(e4.Logs.String()), marker)
	scan(t, "log B", []byte(e6.Logs.String()), marker)
}
