package bridge

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"smessenger/internal/channel"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// slowFirstServer is the real API client with two brakes for ordering
// tests: HeaderBlobs waits until release is closed, and the batch holding
// INBOX's lowest UID is held back a little longer than the others, so the
// batches after it are ready first.
type slowFirstServer struct {
	Server
	release chan struct{}
	delay   time.Duration

	mu    sync.Mutex
	first store.MessageID
}

func (s *slowFirstServer) ListMessages(ctx context.Context, mailbox string, since uint32) ([]store.MessageMeta, error) {
	metas, err := s.Server.ListMessages(ctx, mailbox, since)
	if err == nil && mailbox == "INBOX" && len(metas) > 0 {
		low := slices.MinFunc(metas, func(a, b store.MessageMeta) int { return int(int64(a.UID) - int64(b.UID)) })
		s.mu.Lock()
		s.first = low.ID
		s.mu.Unlock()
	}
	return metas, err
}

func (s *slowFirstServer) HeaderBlobs(ctx context.Context, ids []store.MessageID) ([][]byte, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	slow := slices.Contains(ids, s.first)
	s.mu.Unlock()
	if slow {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Server.HeaderBlobs(ctx, ids)
}

// TestFirstSyncAddsInUIDOrder: a first sync downloads and opens header
// batches in parallel, yet a watcher of INBOX is told of the messages in
// strictly ascending UID order, every one of them, even when the batch
// with the lowest UIDs is the slowest to arrive.
func TestFirstSyncAddsInUIDOrder(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, bob)
	dir, _ := testLogin(t, env, bob, tok, nil)
	const n = 60
	var raws [][]byte
	for i := 1; i <= n; i++ {
		raws = append(raws, mailMsg(i, "ordered"))
	}
	newSender(t, env, "alice@"+servertest.Domain, bob).deliver(t, raws...)

	srv := &slowFirstServer{release: make(chan struct{}), delay: 300 * time.Millisecond}
	a, err := Open(context.Background(), OpenConfig{DataDir: dir, Passphrase: testPass, PrefetchWorkers: -1,
		NewServer: func(addr string, cfg channel.ClientConfig) Server {
			srv.Server = newTestServer(addr, cfg)
			return srv
		}})
	if err != nil {
		t.Fatal(err)
	}
	a.syncBatch = 10 // six batches, three in flight
	b := &testBridge{Account: a, logs: &servertest.LogBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- a.Run(ctx) }()
	defer b.stop(t)

	// INBOX appears (empty) before any header blob is fetched.
	waitFor(t, 10*time.Second, "INBOX in the index", func() bool {
		_, err := a.Mailbox(ctx, "INBOX")
		return err == nil
	})
	updates, stop := a.Watch("INBOX")
	defer stop()
	close(srv.release)
	var got []uint32
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case u := <-updates:
			if u.Kind == UpdateAdded {
				got = append(got, u.UID)
			}
		case <-timeout:
			t.Fatalf("got %d of %d additions: %v", len(got), n, got)
		}
	}
	for i, uid := range got {
		if uid != uint32(i+1) {
			t.Fatalf("additions out of UID order: %v", got)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := a.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	if c := countMessages(t, a, "INBOX"); c != n {
		t.Fatalf("%d messages in INBOX, want %d", c, n)
	}
}

// TestLiveAdditionsInUIDOrder: messages delivered in one call are
// committed by the server concurrently; the running bridge follows their
// events in Seq order and fetches them in small parallel batches, and a
// watcher of INBOX still sees every UID, in ascending order.
func TestLiveAdditionsInUIDOrder(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, bob)
	dir, _ := testLogin(t, env, bob, tok, nil)
	s := newSender(t, env, "alice@"+servertest.Domain, bob)
	s.deliver(t, mailMsg(0, "first"))
	b := openBridge(t, dir)
	b.syncBatch = 7
	b.start(t)
	defer b.stop(t)
	updates, stop := b.Watch("INBOX")
	defer stop()

	const n = 80
	ds := make([]apiDelivery, n)
	for i := range ds {
		raw := mailMsg(i+1, "live")
		hb, bb, _, err := pgp.SealMessage(raw, []*pgp.Key{s.key}, pgp.SealOptions{Signer: s.user.Key})
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = apiDelivery{Recipient: bob, Size: int64(len(raw)), HeaderBlob: hb, BodyBlob: bb}
	}
	if err := s.user.Client.Deliver(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	var got []uint32
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case u := <-updates:
			if u.Kind == UpdateAdded {
				got = append(got, u.UID)
			}
		case <-timeout:
			t.Fatalf("got %d of %d additions: %v", len(got), n, got)
		}
	}
	for i, uid := range got {
		if uid != uint32(i+2) {
			t.Fatalf("additions out of UID order: %v", got)
		}
	}
}
