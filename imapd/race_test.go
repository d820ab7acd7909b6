package imapd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"smessenger/bridge"
	"smessenger/internal/logging"
)

// slowFirstAppend is a memView whose next APPEND takes its UID from the
// server at once but reaches the cache only when released, as a bridge
// append does when its server round trip is slow: a later APPEND gets a
// higher UID and lands first.
type slowFirstAppend struct {
	*memView
	hold     chan struct{} // closed to let the held append finish
	reserved chan uint32   // receives the held append's UID
	armed    bool
}

func (v *slowFirstAppend) Append(ctx context.Context, mailbox string, raw []byte, flags []string, date time.Time) (uint32, uint32, error) {
	v.mu.Lock()
	if !v.armed {
		v.mu.Unlock()
		return v.memView.Append(ctx, mailbox, raw, flags, date)
	}
	v.armed = false
	b, err := v.box(mailbox)
	if err != nil {
		v.mu.Unlock()
		return 0, 0, err
	}
	uid := b.info.UIDNext
	b.info.UIDNext++
	v.mu.Unlock()
	v.reserved <- uid
	<-v.hold
	sum := summarize(raw)
	v.mu.Lock()
	defer v.mu.Unlock()
	m := &memMsg{raw: raw, info: bridge.MessageInfo{UID: uid, Flags: flags, InternalDate: date, Size: int64(len(raw)), Summary: sum}}
	i, _ := slices.BinarySearchFunc(b.msgs, uid, func(m *memMsg, u uint32) int { return int(int64(m.info.UID) - int64(u)) })
	b.msgs = slices.Insert(b.msgs, i, m)
	v.notify(bridge.Update{Kind: bridge.UpdateAdded, Mailbox: mailbox, UID: uid})
	return b.info.UIDValidity, uid, nil
}

// TestRacingAppendsKeepLowerUID: two APPENDs race into a selected mailbox
// and the lower UID reaches the cache last. A third session must still see
// both, in UID order, without selecting again.
func TestRacingAppendsKeepLowerUID(t *testing.T) {
	view := &slowFirstAppend{memView: newMemView(), hold: make(chan struct{}), reserved: make(chan uint32, 1), armed: true}
	view.memView.deliver("INBOX", simpleMsg)
	logs := &syncBuffer{}
	srv := New(Config{Users: AuthenticatorFunc(func(u, p string) (bridge.View, bool) {
		return view, u == testUser && p == testPass
	}), Logger: logging.New(logs, slog.LevelDebug)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		if srv.Panics() != 0 {
			t.Errorf("recovered panics:\n%s", logs.String())
		}
	})
	dial := func() *imapclient.Client {
		c, err := imapclient.DialInsecure(l.Addr().String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login(testUser, testPass).Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	watcher := dial()
	if _, err := watcher.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendOne := func(c *imapclient.Client, subject string, done chan<- error) {
		raw := []byte(fmt.Sprintf("Subject: %s\r\n\r\nbody\r\n", subject))
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		cmd.Write(raw)
		cmd.Close()
		_, err := cmd.Wait()
		done <- err
	}
	slowDone, fastDone := make(chan error, 1), make(chan error, 1)
	go appendOne(dial(), "slow", slowDone)
	low := <-view.reserved
	go appendOne(dial(), "fast", fastDone)
	eventually(t, "the fast append in the cache", func() bool {
		msgs, _ := view.Messages(t.Context(), "INBOX")
		return len(msgs) == 2 && msgs[1].UID == low+1
	})
	// Give the watcher time to (wrongly) announce the higher UID alone.
	time.Sleep(100 * time.Millisecond)
	watcher.Noop().Wait()
	close(view.hold)
	for _, ch := range []chan error{slowDone, fastDone} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	want := []imap.UID{1, imap.UID(low), imap.UID(low + 1)}
	var got []imap.UID
	eventually(t, "both appends visible in UID order", func() bool {
		watcher.Noop().Wait()
		got = uidsInBox(t, watcher)
		return slices.Equal(got, want)
	})
}
