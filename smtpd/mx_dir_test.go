package smtpd

import (
	"context"
	"sync"
	"testing"
	"time"
)

// mxClock is a test clock the directory cache's expiry can be moved past.
type mxClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *mxClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *mxClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mxSendRaw runs one transaction on rc and returns the reply to the data.
func mxSendRaw(rc *mxRawConn, rcpt, rcptCode string) string {
	rc.t.Helper()
	rc.cmd("MAIL FROM:<bob@sender.test>", "250")
	if l := rc.cmd("RCPT TO:<"+rcpt+">", rcptCode); l[0] != '2' {
		rc.cmd("RSET", "250")
		return l
	}
	rc.cmd("DATA", "354")
	rc.send(mxTestMessage("dir cache", "body") + ".\r\n")
	return rc.reply()
}

// The directory cache keeps only good answers: an address that did not
// exist a moment ago and a mailbox that filled up are seen at once, and an
// answer it did keep is checked again by the append, so a stale one costs
// a temporary failure, never a loss or a wrong acceptance.
func TestMXDirectoryCache(t *testing.T) {
	clock := &mxClock{t: time.Now()}
	e := mxStart(t, func(c *MXConfig) { c.Now = clock.now })
	ctx := context.Background()
	rc := mxDialRaw(t, e.addr)
	rc.cmd("EHLO client.test", "250")

	// Unknown, then created: accepted without waiting for any expiry.
	mxSendRaw(rc, "carol@example.org", "550 5.1.1")
	carol, err := e.st.CreateAccount(ctx, "carol@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetPublicKey(ctx, carol.ID, e.key.PublicBinary()); err != nil {
		t.Fatal(err)
	}
	if l := mxSendRaw(rc, "carol@example.org", "250"); l[:3] != "250" {
		t.Fatalf("new account: data reply %q", l)
	}

	// Alice is cached after one delivery; her mailbox is then made full.
	if l := mxSendRaw(rc, "alice@example.org", "250"); l[:3] != "250" {
		t.Fatalf("first message: %q", l)
	}
	a, err := e.st.GetAccount(ctx, e.acct)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetQuota(ctx, e.acct, a.UsedBytes); err != nil {
		t.Fatal(err)
	}
	// Within the cache's lifetime RCPT still passes, but the append's own
	// quota check refuses the message with a temporary error.
	if l := mxSendRaw(rc, "alice@example.org", "250"); l[:3] != "452" {
		t.Fatalf("over quota within the cache lifetime: data reply %q, want 452", l)
	}
	clock.add(6 * time.Second)
	mxSendRaw(rc, "alice@example.org", "552 5.2.2")
	// A full mailbox is not cached: room made is room seen at once.
	if err := e.st.SetQuota(ctx, e.acct, 0); err != nil {
		t.Fatal(err)
	}
	if l := mxSendRaw(rc, "alice@example.org", "250"); l[:3] != "250" {
		t.Fatalf("after the quota was lifted: %q", l)
	}

	// A deleted account: a cached answer ends in a temporary failure (the
	// sender retries), an expired one in 550.
	if l := mxSendRaw(rc, "carol@example.org", "250"); l[:3] != "250" {
		t.Fatalf("carol again: %q", l)
	}
	if err := e.st.DeleteAccount(ctx, carol.ID); err != nil {
		t.Fatal(err)
	}
	if l := mxSendRaw(rc, "carol@example.org", "250"); l[0] != '4' {
		t.Fatalf("deleted account within the cache lifetime: data reply %q, want 4xx", l)
	}
	clock.add(6 * time.Second)
	mxSendRaw(rc, "carol@example.org", "550 5.1.1")
	if n := len(e.stored(t)); n != 2 {
		t.Fatalf("alice's INBOX holds %d messages, want 2", n)
	}
}
