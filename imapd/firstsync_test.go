package imapd

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
)

// heldServer is the bridge's real server client with brakes: HeaderBlobs
// waits until release is closed, and the call holding INBOX's lowest UID
// waits delay longer, so the header batches after it are ready first (what
// a slow connection does to a first sync now and then).
type heldServer struct {
	bridge.Server
	release chan struct{}
	delay   time.Duration

	mu  sync.Mutex
	low store.MessageID
}

func (s *heldServer) ListMessages(ctx context.Context, mailbox string, since uint32) ([]store.MessageMeta, error) {
	metas, err := s.Server.ListMessages(ctx, mailbox, since)
	if err == nil && mailbox == "INBOX" && len(metas) > 0 {
		low := slices.MinFunc(metas, func(a, b store.MessageMeta) int { return int(int64(a.UID) - int64(b.UID)) })
		s.mu.Lock()
		s.low = low.ID
		s.mu.Unlock()
	}
	return metas, err
}

func (s *heldServer) HeaderBlobs(ctx context.Context, ids []store.MessageID) ([][]byte, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	slow := slices.Contains(ids, s.low)
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

// TestSelectedDuringFirstSync: a client SELECTs INBOX while the bridge's
// first sync of 2,000 messages is still fetching header blobs (in parallel
// batches, the lowest UIDs arriving last). Without re-SELECT, its view ends
// up with every UID: EXISTS reaches 2,000, UID SEARCH ALL and UID FETCH 1:*
// list 1..2000, and ENVELOPEs (read from the bridge in batches) are right.
func TestSelectedDuringFirstSync(t *testing.T) {
	const n = 2000
	held := &heldServer{release: make(chan struct{}), delay: time.Second}
	rb := startBridgeWith(t, func(env *servertest.Env, user string) {
		raws := make([][]byte, n)
		for i := range raws {
			raws[i] = fmt.Appendf(nil, "From: Alice <alice@example.org>\r\nTo: %s\r\nSubject: sync %d\r\n"+
				"Message-ID: <s%d@example.org>\r\n\r\nBody %d\r\n", user, i, i, i)
		}
		deliverSealed(t, env, user, raws)
	}, nil, realBridgeOptions{noWait: true, wrap: func(s bridge.Server) bridge.Server {
		held.Server = s
		return held
	}})
	var exists atomic.Uint32
	c := rb.dial(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists.Store(*d.NumMessages)
		}
	}})
	// INBOX exists (empty) once the bridge has the mailbox list, before
	// any header blob is downloaded.
	var sel *imap.SelectData
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if sel, err = c.Select("INBOX", nil).Wait(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SELECT INBOX: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sel.NumMessages != 0 {
		t.Fatalf("SELECT saw %d messages before the header download started", sel.NumMessages)
	}
	close(held.release)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := rb.acct.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	for exists.Load() < n {
		if ctx.Err() != nil {
			t.Fatalf("EXISTS stopped at %d of %d", exists.Load(), n)
		}
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if uids := data.AllUIDs(); len(uids) != n || uids[0] != 1 || uids[n-1] != n {
		t.Fatalf("UID SEARCH ALL: %d UIDs, %v", len(uids), data.All)
	}
	msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != n {
		t.Fatalf("UID FETCH 1:*: %d messages, %v", len(msgs), err)
	}
	subjects := map[string]bool{}
	for i, m := range msgs {
		if m.UID != imap.UID(i+1) || m.SeqNum != uint32(i+1) || m.Envelope == nil {
			t.Fatalf("message %d: UID %d seq %d envelope %v", i, m.UID, m.SeqNum, m.Envelope)
		}
		subjects[m.Envelope.Subject] = true
	}
	if len(subjects) != n || !subjects["sync 0"] || !subjects[fmt.Sprintf("sync %d", n-1)] {
		t.Fatalf("%d distinct subjects", len(subjects))
	}
}
