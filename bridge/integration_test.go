package bridge

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/pgp"
)

const bob = "bob@" + servertest.Domain

// TestSyncLiveAndPrivacy: messages delivered before the bridge starts are
// synced, a live one arrives through Watch, bodies decrypt, and the data
// folder holds no plaintext marker and no unprotected key afterwards.
func TestSyncLiveAndPrivacy(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, bob)
	dir, res := testLogin(t, env, bob, tok, nil)
	if res.BridgePassword == "" || res.Fingerprint == "" || len(res.Addresses) == 0 || res.Addresses[0] != bob {
		t.Fatalf("login result %+v", res)
	}
	s := newSender(t, env, "alice@"+servertest.Domain, bob)
	var raws [][]byte
	for i := 1; i <= 30; i++ {
		raws = append(raws, mailMsg(i, marker))
	}
	s.deliver(t, raws...)

	b := runBridge(t, dir)
	ctx := context.Background()
	ms, err := b.Messages(ctx, "INBOX")
	if err != nil || len(ms) != 30 {
		t.Fatalf("synced %d messages, %v", len(ms), err)
	}
	for i, m := range ms {
		if m.UID != uint32(i+1) || !strings.HasPrefix(m.Summary.Envelope.Subject, "message ") || m.Size != int64(len(raws[i])) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	body, err := b.Body(ctx, "INBOX", 3)
	if err != nil || !bytes.Equal(body, raws[2]) {
		t.Fatalf("body: %v\n%s", err, body)
	}
	boxes, _ := b.Mailboxes(ctx)
	var names []string
	for _, mb := range boxes {
		names = append(names, mb.Name)
	}
	if !slices.Equal(names, []string{"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"}) || boxes[0].Messages != 30 || boxes[0].Unseen != 30 {
		t.Fatalf("mailboxes %v %+v", names, boxes[0])
	}
	if !b.CheckPassword("BOB@example.org", res.BridgePassword) || b.CheckPassword(bob, "nope") ||
		b.CheckPassword("alice@example.org", res.BridgePassword) {
		t.Fatal("CheckPassword wrong")
	}

	updates, cancel := b.Watch("INBOX")
	defer cancel()
	s.deliver(t, mailMsg(31, marker))
	select {
	case u := <-updates:
		if u.Kind != UpdateAdded || u.UID != 31 || u.Mailbox != "INBOX" {
			t.Fatalf("update %+v", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no update for a live delivery")
	}
	// Let prefetch cache every body, then scan the data folder.
	waitFor(t, 20*time.Second, "prefetch", func() bool {
		b.mu.RLock()
		defer b.mu.RUnlock()
		for _, e := range b.boxes[b.byName["INBOX"]].msgs {
			if !e.hasBody {
				return false
			}
		}
		return true
	})
	if err := b.cache.sync(); err != nil {
		t.Fatal(err)
	}
	scanDataDir(t, dir)
}

// scanDataDir fails if any file of dir holds the marker or the passphrase,
// or if the vault's secret key opens without the passphrase.
func scanDataDir(t *testing.T, dir string) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, bad := range [][]byte{[]byte(marker), testPass, []byte("message 1 ")} {
			if bytes.Contains(data, bad) {
				t.Errorf("%s contains %q in clear", filepath.Base(path), bad)
			}
		}
		return nil
	})
	if n < 2 {
		t.Fatalf("scanned %d files", n)
	}
	v, err := readVault(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgp.ImportPrivate([]byte(v.SecretKey), nil); err == nil {
		t.Fatal("vault secret key is not passphrase-protected")
	}
}

// TestViewOperations: every View operation shows its result at once, and
// the server's events for them do not repeat the notifications.
func TestViewOperations(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, bob)
	dir, _ := testLogin(t, env, bob, tok, nil)
	s := newSender(t, env, "alice@"+servertest.Domain, bob)
	s.deliver(t, mailMsg(1, ""), mailMsg(2, ""), mailMsg(3, ""), mailMsg(4, ""))
	b := runBridge(t, dir)
	ctx := context.Background()
	inbox, cancel := b.Watch("INBOX")
	defer cancel()

	draft := mailMsg(100, "draft text")
	validity, uid, err := b.Append(ctx, "Drafts", draft, []string{`\Draft`}, time.Unix(1700000000, 0))
	if err != nil || uid != 1 {
		t.Fatalf("Append: %d %d %v", validity, uid, err)
	}
	dm, _ := b.Mailbox(ctx, "Drafts")
	if dm.UIDValidity != validity || dm.Messages != 1 || dm.UIDNext != 2 {
		t.Fatalf("Drafts after append: %+v", dm)
	}
	if got, err := b.Body(ctx, "Drafts", 1); err != nil || !bytes.Equal(got, draft) {
		t.Fatalf("draft body %v", err)
	}
	if err := b.StoreFlags(ctx, "INBOX", []uint32{1, 2}, store.FlagsAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	if mb, _ := b.Mailbox(ctx, "INBOX"); mb.Unseen != 2 {
		t.Fatalf("unseen %d after STORE", mb.Unseen)
	}
	if err := b.CreateMailbox(ctx, "Projects"); err != nil {
		t.Fatal(err)
	}
	_, pairs, err := b.Copy(ctx, "INBOX", []uint32{1}, "Projects")
	if err != nil || len(pairs) != 1 || pairs[0] != (UIDPair{Src: 1, Dst: 1}) {
		t.Fatalf("Copy %v %v", pairs, err)
	}
	if got, err := b.Body(ctx, "Projects", 1); err != nil || !bytes.Contains(got, []byte("Hello number 1.")) {
		t.Fatalf("copied body: %v", err)
	}
	_, pairs, err = b.Move(ctx, "INBOX", []uint32{2, 3}, "Archive")
	if err != nil || len(pairs) != 2 || countMessages(t, b.Account, "Archive") != 2 || countMessages(t, b.Account, "INBOX") != 2 {
		t.Fatalf("Move %v %v", pairs, err)
	}
	if ms, _ := b.Messages(ctx, "Archive"); !slices.Contains(ms[0].Flags, `\Seen`) {
		t.Fatalf("moved message lost its flags: %+v", ms[0])
	}
	if err := b.StoreFlags(ctx, "INBOX", []uint32{4}, store.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	gone, err := b.Expunge(ctx, "INBOX", nil)
	if err != nil || !slices.Equal(gone, []uint32{4}) || countMessages(t, b.Account, "INBOX") != 1 {
		t.Fatalf("Expunge %v %v", gone, err)
	}
	if err := b.RenameMailbox(ctx, "Projects", "Work"); err != nil {
		t.Fatal(err)
	}
	if countMessages(t, b.Account, "Work") != 1 {
		t.Fatal("renamed mailbox lost its message")
	}
	if err := b.SetSubscribed(ctx, "Work", true); err != nil {
		t.Fatal(err)
	}
	if mb, err := b.Mailbox(ctx, "Work"); err != nil || !mb.Subscribed {
		t.Fatalf("subscribe: %+v %v", mb, err)
	}
	if err := b.DeleteMailbox(ctx, "Work"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Mailbox(ctx, "Work"); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("deleted mailbox still there: %v", err)
	}
	if err := b.DeleteMailbox(ctx, "INBOX"); !errors.Is(err, store.ErrMailboxProtected) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if _, _, err := b.Append(ctx, "Nowhere", draft, nil, time.Time{}); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("append to missing mailbox: %v", err)
	}

	// Wait until the bridge has applied the server's events for all of the
	// above, then count INBOX notifications: each change exactly once.
	last, err := b.lastEventSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "events applied", func() bool { return b.currentSeq() >= last })
	counts := map[UpdateKind]int{}
	for drained := false; !drained; {
		select {
		case u := <-inbox:
			counts[u.Kind]++
		case <-time.After(300 * time.Millisecond):
			drained = true
		}
	}
	// INBOX: flags on 1 and 2, 2 and 3 moved out, \Deleted on 4, 4 expunged.
	if counts[UpdateFlags] != 3 || counts[UpdateExpunged] != 3 || counts[UpdateAdded] != 0 {
		t.Fatalf("INBOX notifications %v", counts)
	}

	// The filter hook short-circuits Append.
	b.SetAppendFilter(func(mailbox string, raw []byte) (bool, uint32) { return mailbox == "Sent", 77 })
	if _, uid, err := b.Append(ctx, "Sent", draft, nil, time.Time{}); err != nil || uid != 77 || countMessages(t, b.Account, "Sent") != 0 {
		t.Fatalf("filtered append stored something: %d %v", uid, err)
	}
}

// TestTwoDevices: a second device of the same user, set up with the
// exported key, shows the same UIDs and sees the first device's changes.
func TestTwoDevices(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, bob)
	dir1, _ := testLogin(t, env, bob, tok, nil)
	exported, err := ExportKey(dir1, testPass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ExportKey(dir1, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("export with a wrong passphrase: %v", err)
	}
	tok2, err := server.NewEnrolToken(context.Background(), env.Store, bob, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir2, res2 := testLogin(t, env, bob, tok2, exported)
	s := newSender(t, env, "alice@"+servertest.Domain, bob)
	s.deliver(t, mailMsg(1, ""), mailMsg(2, ""), mailMsg(3, ""))
	d1, d2 := runBridge(t, dir1), runBridge(t, dir2)
	if d1.Key().Fingerprint() != res2.Fingerprint {
		t.Fatal("second device has another key")
	}
	ctx := context.Background()
	m1, _ := d1.Messages(ctx, "INBOX")
	m2, _ := d2.Messages(ctx, "INBOX")
	if len(m1) != 3 || len(m2) != 3 {
		t.Fatalf("devices see %d and %d messages", len(m1), len(m2))
	}
	i1, _ := d1.Mailbox(ctx, "INBOX")
	i2, _ := d2.Mailbox(ctx, "INBOX")
	if i1.UIDValidity != i2.UIDValidity {
		t.Fatal("UIDVALIDITY differs")
	}
	for i := range m1 {
		if m1[i].UID != m2[i].UID || m1[i].Summary.Envelope.MessageID != m2[i].Summary.Envelope.MessageID {
			t.Fatalf("UIDs differ: %d/%d", m1[i].UID, m2[i].UID)
		}
	}
	if body, err := d2.Body(ctx, "INBOX", 2); err != nil || !bytes.Contains(body, []byte("Hello number 2.")) {
		t.Fatalf("second device body: %v", err)
	}
	updates, cancel := d2.Watch("INBOX")
	defer cancel()
	if err := d1.StoreFlags(ctx, "INBOX", []uint32{2}, store.FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	if _, err := d1.Expunge(ctx, "INBOX", []uint32{3}); err != nil {
		t.Fatal(err)
	}
	want := []Update{{Kind: UpdateFlags, Mailbox: "INBOX", UID: 2, Flags: []string{`\Flagged`}},
		{Kind: UpdateExpunged, Mailbox: "INBOX", UID: 3}}
	for _, w := range want {
		select {
		case u := <-updates:
			if u.Kind != w.Kind || u.UID != w.UID || !slices.Equal(u.Flags, w.Flags) {
				t.Fatalf("got %+v want %+v", u, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("second device not told: %+v", w)
		}
	}
}

// TestReconnectResume: the server node stops; the bridge keeps serving
// from its cache, reconnects when a node is back on the same store, and
// resumes from the last event. A reopened bridge serves from its cache
// before it reaches the server.
func TestReconnectResume(t *testing.T) {
	st := servertest.OpenBolt(t)
	env := servertest.Start(t, st, nil)
	_, tok := env.AddUser(t, bob)
	dir, _ := testLogin(t, env, bob, tok, nil)
	s := newSender(t, env, "alice@"+servertest.Domain, bob)
	s.deliver(t, mailMsg(1, ""), mailMsg(2, ""))
	b := runBridge(t, dir)
	ctx := context.Background()
	if _, err := b.Body(ctx, "INBOX", 1); err != nil {
		t.Fatal(err)
	}

	cfg := env.Config
	cfg.APIListen = env.Node.APIAddr().String() // the address the vault pins
	env.Stop(t)
	if n := countMessages(t, b.Account, "INBOX"); n != 2 {
		t.Fatalf("cache serves %d messages while the server is down", n)
	}
	if body, err := b.Body(ctx, "INBOX", 1); err != nil || !bytes.Contains(body, []byte("Hello number 1.")) {
		t.Fatalf("cached body while down: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // let it notice and back off
	env2 := servertest.StartConfig(t, st, cfg, nil)
	c := env2.ClientWithKey(t, s.user.Device, "")
	s.user.Client = c
	s.deliver(t, mailMsg(3, "after restart"))
	waitFor(t, 20*time.Second, "message after restart", func() bool { return countMessages(t, b.Account, "INBOX") == 3 })
	if !strings.Contains(b.logs.String(), "reconnecting") {
		t.Error("no reconnect logged")
	}
	b.stopOnce(t)

	// Reopen: the cache is there before Run; Run resumes from its Seq.
	b2 := openBridge(t, dir)
	if n := countMessages(t, b2.Account, "INBOX"); n != 3 || b2.currentSeq() == 0 {
		t.Fatalf("reopened cache has %d messages, seq %d", n, b2.currentSeq())
	}
	s.deliver(t, mailMsg(4, ""))
	b2.start(t)
	t.Cleanup(func() { b2.stop(t) })
	waitFor(t, 10*time.Second, "message 4", func() bool { return countMessages(t, b2.Account, "INBOX") == 4 })
	if strings.Contains(b2.logs.String(), "first sync started") {
		t.Error("reopened bridge did a full sync instead of resuming")
	}
}

// TestDecryptionRules: mail encrypted from outside is shown decrypted with
// its signature result and its own summary; what cannot be decrypted is a
// readable placeholder, never an error.
func TestDecryptionRules(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, bob)
	dir, _ := testLogin(t, env, bob, tok, nil)
	s := newSender(t, env, "alice@"+servertest.Domain, bob)
	carol, err := pgp.GenerateKey("Carol", "carol@example.net")
	if err != nil {
		t.Fatal(err)
	}
	inner := []byte("From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: the real subject\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nX-Smessenger-Signature: valid\r\nContent-Type: text/plain\r\n\r\ninner secret text\r\n")
	toBob, err := pgp.BuildEncrypted(inner, []*pgp.Key{s.key}, s.user.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	toCarol, err := pgp.BuildEncrypted(inner, []*pgp.Key{carol.Public()}, s.user.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pgp.IsEncrypted(toBob) {
		t.Fatal("BuildEncrypted output not recognised as encrypted")
	}
	s.deliver(t, toBob, toCarol)
	// 3: a body blob sealed to someone else under a valid header blob.
	plain := mailMsg(3, "")
	hb, _, _, err := pgp.SealMessage(plain, []*pgp.Key{s.key}, pgp.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, bbCarol, _, err := pgp.SealMessage(plain, []*pgp.Key{carol.Public()}, pgp.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 4: both blobs garbage.
	err = s.user.Client.Deliver(context.Background(), []apiDelivery{
		{Recipient: bob, Size: int64(len(plain)), HeaderBlob: hb, BodyBlob: bbCarol},
		{Recipient: bob, Size: 10, HeaderBlob: []byte("not openpgp"), BodyBlob: []byte("nor this")},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := runBridge(t, dir)
	ctx := context.Background()
	ms, err := b.Messages(ctx, "INBOX")
	if err != nil || len(ms) != 4 {
		t.Fatalf("%d messages, %v", len(ms), err)
	}
	// 1: decrypted at sync; the summary is the inner message's.
	if ms[0].Summary.Envelope.Subject != "the real subject" || ms[0].Summary.Encrypted {
		t.Fatalf("summary of the decrypted message: %+v", ms[0].Summary.Envelope)
	}
	body, err := b.Body(ctx, "INBOX", 1)
	if err != nil || !bytes.Contains(body, []byte("inner secret text")) ||
		!bytes.Contains(body, []byte("X-Smessenger-Signature: valid")) || bytes.Count(body, []byte("X-Smessenger-Signature")) != 1 ||
		!bytes.Contains(body, []byte("x-smessenger-pgp=pass")) {
		t.Fatalf("decrypted body: %v\n%s", err, body)
	}
	if ms[0].Size != int64(len(body)) {
		t.Fatalf("size %d, body %d", ms[0].Size, len(body))
	}
	for uid := uint32(2); uid <= 4; uid++ {
		body, err := b.Body(ctx, "INBOX", uid)
		// uid 3's header blob opened, so its summary becomes the
		// placeholder's when the body is first read.
		ms, _ = b.Messages(ctx, "INBOX")
		if err != nil || !bytes.Contains(body, []byte("This message could not be decrypted:")) {
			t.Fatalf("uid %d: %v\n%s", uid, err, body)
		}
		if bytes.Contains(body, []byte("inner secret text")) {
			t.Fatalf("uid %d shows content", uid)
		}
		if sum := ms[uid-1].Summary; sum == nil || sum.Structure.Type != "text" || ms[uid-1].Size != int64(len(body)) {
			t.Fatalf("uid %d summary does not describe the placeholder", uid)
		}
	}
	if body, _ := b.Body(ctx, "INBOX", 2); !bytes.Contains(body, []byte("not encrypted to your key")) {
		t.Fatalf("reason missing:\n%s", body)
	}
}
