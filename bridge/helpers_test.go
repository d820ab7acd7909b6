package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"smessenger/internal/api"
	"smessenger/internal/channel"
	"smessenger/internal/logging"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// apiServer adapts *api.Client to Server: the API package has its own
// WhoAmI and Delivery types with the same fields.
type apiServer struct{ *api.Client }

func (s apiServer) WhoAmI(ctx context.Context) (WhoAmI, error) {
	w, err := s.Client.WhoAmI(ctx)
	return WhoAmI(w), err
}

func (s apiServer) Deliver(ctx context.Context, ds []Delivery) error {
	out := make([]api.Delivery, len(ds))
	for i, d := range ds {
		out[i] = api.Delivery(d)
	}
	return s.Client.Deliver(ctx, out)
}

func (s apiServer) DeliverWithCopy(ctx context.Context, ds []Delivery, mailbox string, cp store.NewMessage) (store.MessageMeta, error, error) {
	return s.Client.DeliverWithCopy(ctx, ds, mailbox, cp)
}

func newTestServer(addr string, cfg channel.ClientConfig) Server {
	cfg.HandshakeTimeout = 10 * time.Second
	return apiServer{api.NewClient(addr, cfg)}
}

var testPass = []byte("test passphrase")

// testLogin sets up a bridge for address against env with token.
func testLogin(t testing.TB, env *servertest.Env, address, token string, imported []byte) (string, *LoginResult) {
	t.Helper()
	dir := t.TempDir()
	res, err := Login(context.Background(), LoginConfig{
		DataDir: dir, Address: address, Name: "Test User", ServerAddr: env.Node.APIAddr().String(),
		ServerKey: channel.Fingerprint(env.ServerKey), Token: token, Passphrase: testPass,
		ImportedKey: imported, NewServer: newTestServer,
	})
	if err != nil {
		t.Fatalf("Login %s: %v", address, err)
	}
	return dir, res
}

// testBridge is a running account.
type testBridge struct {
	*Account
	logs   *servertest.LogBuffer
	cancel context.CancelFunc
	done   chan error
}

func openBridge(t testing.TB, dir string) *testBridge {
	t.Helper()
	logs := &servertest.LogBuffer{}
	a, err := Open(context.Background(), OpenConfig{DataDir: dir, Passphrase: testPass, NewServer: newTestServer,
		Log: logging.New(logs, slog.LevelDebug)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return &testBridge{Account: a, logs: logs}
}

func (b *testBridge) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- b.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := b.WaitSynced(wctx); err != nil {
		t.Fatalf("WaitSynced: %v\n%s", err, b.logs.String())
	}
}

func (b *testBridge) stop(t testing.TB) {
	t.Helper()
	if b.cancel != nil {
		b.cancel()
		select {
		case err := <-b.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return")
		}
		b.cancel = nil
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func runBridge(t testing.TB, dir string) *testBridge {
	t.Helper()
	b := openBridge(t, dir)
	b.start(t)
	t.Cleanup(func() {
		if b.Account != nil && b.cache != nil {
			b.stopOnce(t)
		}
	})
	return b
}

func (b *testBridge) stopOnce(t testing.TB) {
	defer func() { b.Account = nil }()
	b.stop(t)
}

// sender delivers sealed messages to an address, as another user's bridge
// would.
type sender struct {
	user *servertest.User
	to   string
	key  *pgp.Key
}

func newSender(t testing.TB, env *servertest.Env, from, to string) *sender {
	t.Helper()
	u := env.NewUser(t, from)
	kb, _, err := u.Client.LookupKey(context.Background(), to)
	if err != nil {
		t.Fatalf("LookupKey %s: %v", to, err)
	}
	k, err := pgp.ReadKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	return &sender{user: u, to: to, key: k}
}

func (s *sender) deliver(t testing.TB, raws ...[]byte) {
	t.Helper()
	var ds []api.Delivery
	for _, raw := range raws {
		hb, bb, _, err := pgp.SealMessage(raw, []*pgp.Key{s.key}, pgp.SealOptions{Signer: s.user.Key})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, api.Delivery{Recipient: s.to, Size: int64(len(raw)), HeaderBlob: hb, BodyBlob: bb})
	}
	// One call per message: the server commits the messages of one call
	// concurrently, so only separate calls fix their UID order, which
	// the tests check.
	for _, d := range ds {
		if err := s.user.Client.Deliver(context.Background(), []api.Delivery{d}); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
}

func mailMsg(i int, extra string) []byte {
	return []byte(fmt.Sprintf("From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: message %d %s\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <m%d@example.org>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nHello number %d. %s\r\n", i, extra, i, i, extra))
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countMessages(t testing.TB, a *Account, mailbox string) int {
	t.Helper()
	ms, err := a.Messages(context.Background(), mailbox)
	if err != nil && !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatal(err)
	}
	return len(ms)
}

type apiDelivery = api.Delivery
