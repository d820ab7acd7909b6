package bridge

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// routerEnv is a server with two running bridges (alice, bob) and a
// router for alice.
type routerEnv struct {
	env      *servertest.Env
	alice    *testBridge
	bob      *testBridge
	aliceDir string
	contacts *Contacts
	router   *Router
}

const (
	alice = "alice@" + servertest.Domain
)

func newRouterEnv(t *testing.T, policy string) *routerEnv {
	t.Helper()
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, ta := env.AddUser(t, alice)
	_, tb := env.AddUser(t, bob)
	adir, _ := testLogin(t, env, alice, ta, nil)
	bdir, _ := testLogin(t, env, bob, tb, nil)
	e := &routerEnv{env: env, alice: runBridge(t, adir), bob: runBridge(t, bdir), aliceDir: adir}
	c, err := OpenContacts(ContactsPath(adir), e.alice.Key())
	if err != nil {
		t.Fatal(err)
	}
	e.contacts = c
	e.router, err = NewRouter(RouterConfig{Account: e.alice.Account, Policy: policy, Contacts: c, KeyCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func outMsg(to, extra string) []byte {
	return []byte("From: Alice <" + alice + ">\r\nTo: " + to + "\r\nSubject: routed " + extra +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + extra + "@example.org>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello " + extra + " ünïcode\r\n")
}

// queued returns the live outbound entries with payloads.
func queued(t *testing.T, st store.Store) []store.QueueEntry {
	t.Helper()
	ctx := context.Background()
	list, err := st.ListQueue(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.QueueEntry
	for _, e := range list {
		full, err := st.GetQueueEntry(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, full)
	}
	return out
}

func queueRcpts(e store.QueueEntry) []string {
	var out []string
	for _, r := range e.Recipients {
		out = append(out, r.Address)
	}
	return out
}

// TestRouterDecisionTable: each kind of recipient is routed by its rule,
// and a refusal names the recipient and changes nothing.
func TestRouterDecisionTable(t *testing.T) {
	e := newRouterEnv(t, PolicyRefuse)
	ctx := context.Background()
	carol, err := pgp.GenerateKey("Carol", "carol@ext.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.contacts.Import([]byte(carol.PublicArmored())); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, rcpt string
		wantErr    error
	}{
		{"internal", bob, nil},
		{"internal-case", "BOB@Example.org", nil},
		{"keyring", "carol@ext.test", nil},
		{"no-key-refused", "erin@ext.test", ErrNoRecipientKey},
		{"unknown-internal", "nobody@" + servertest.Domain, ErrUnknownRecipient},
		{"bad-address", "not-an-address", ErrBadAddress},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := e.router.CheckRecipient(ctx, c.rcpt)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("CheckRecipient(%s) = %v, want %v", c.rcpt, err, c.wantErr)
			}
			var se *SendError
			if c.wantErr != nil && (!errors.As(err, &se) || !strings.Contains(se.PublicMessage(), c.rcpt)) {
				t.Fatalf("refusal does not name the recipient: %v", err)
			}
		})
	}

	// A refused recipient among good ones: nothing is committed anywhere.
	err = e.router.Send(ctx, alice, []string{bob, "erin@ext.test"}, outMsg(bob, "refused"))
	if !errors.Is(err, ErrNoRecipientKey) {
		t.Fatalf("Send with a key-less recipient: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := countMessages(t, e.bob.Account, "INBOX"); n != 0 {
		t.Fatalf("bob got %d messages from a refused send", n)
	}
	if q := queued(t, e.env.Store); len(q) != 0 {
		t.Fatalf("queue holds %d entries after a refused send", len(q))
	}

	// Mixed: bob (internal), carol (keyring, in To) and a Bcc'd internal.
	msg := []byte("From: " + alice + "\r\nTo: " + bob + ", carol@ext.test\r\nBcc: carol@ext.test\r\n" +
		"Subject: mixed\r\nMessage-ID: <mixed@example.org>\r\n\r\nbody\r\n")
	if err := e.router.Send(ctx, alice, []string{bob, "carol@ext.test"}, msg); err != nil {
		t.Fatalf("Send mixed: %v", err)
	}
	waitFor(t, 10*time.Second, "bob's copy", func() bool { return countMessages(t, e.bob.Account, "INBOX") == 1 })
	got, err := e.bob.Body(ctx, "INBOX", 1)
	if err != nil || bytes.Contains(got, []byte("Bcc:")) || !bytes.Contains(got, []byte("Date: ")) {
		t.Fatalf("bob's copy: %v\n%s", err, got)
	}
	q := queued(t, e.env.Store)
	if len(q) != 1 || strings.Join(queueRcpts(q[0]), ",") != "carol@ext.test" {
		t.Fatalf("queue %+v", q)
	}
	d, err := pgp.DecryptMessage(q[0].Payload, carolPrivate(t, carol), []*pgp.Key{e.alice.Key().Public()})
	if err != nil {
		t.Fatalf("carol cannot decrypt: %v", err)
	}
	if d.Signature != pgp.SigValid || !bytes.Contains(d.Message, []byte("Subject: mixed")) ||
		bytes.Contains(d.Message, []byte("Bcc")) || bytes.Contains(q[0].Payload, []byte("Subject: mixed")) {
		t.Fatalf("carol's copy: sig %v\n%s", d.Signature, d.Message)
	}
	if !bytes.Contains(q[0].Payload, []byte("Autocrypt: addr="+alice)) {
		t.Fatal("no Autocrypt header of the sender")
	}
	// The Sent copy keeps the Bcc for the sender.
	waitFor(t, 10*time.Second, "Sent copy", func() bool { return countMessages(t, e.alice.Account, "Sent") == 1 })
	sent, err := e.alice.Body(ctx, "Sent", 1)
	if err != nil || !bytes.Contains(sent, []byte("Bcc: carol@ext.test")) {
		t.Fatalf("Sent copy: %v\n%s", err, sent)
	}
}

// carolPrivate returns k itself: GenerateKey keeps the secret part.
func carolPrivate(t *testing.T, k *pgp.Key) *pgp.Key {
	t.Helper()
	if !k.IsPrivate() {
		t.Fatal("expected a private key")
	}
	return k
}

// TestRouterPlainPolicyAndDedup: key-less mail goes out as written under
// policy plain (signed when asked); the client's APPEND of the same
// Message-ID to Sent stores nothing; a retried submission delivers nothing
// twice.
func TestRouterPlainPolicyAndDedup(t *testing.T) {
	e := newRouterEnv(t, PolicyPlain)
	ctx := context.Background()
	r2, err := NewRouter(RouterConfig{Server: e.alice.Server(), Key: e.alice.Key(), Addresses: e.alice.Addresses,
		Policy: PolicyPlain, SignPlain: true})
	if err != nil {
		t.Fatal(err)
	}
	msg := outMsg("erin@ext.test", "plain1")
	if err := e.router.Send(ctx, alice, []string{"erin@ext.test", bob}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	q := queued(t, e.env.Store)
	if len(q) != 1 || !bytes.HasSuffix(q[0].Payload, msg[bytes.Index(msg, []byte("\r\n\r\n")):]) ||
		!bytes.Contains(q[0].Payload, []byte("Subject: routed plain1")) {
		t.Fatalf("plain payload:\n%s", q[0].Payload)
	}
	// Retry of the same message: nothing new anywhere.
	if err := e.router.Send(ctx, alice, []string{"erin@ext.test", bob}, msg); err != nil {
		t.Fatalf("retry: %v", err)
	}
	waitFor(t, 10*time.Second, "Sent copy", func() bool { return countMessages(t, e.alice.Account, "Sent") == 1 })
	// Thunderbird's APPEND of its own copy.
	_, uid, err := e.alice.Append(ctx, "Sent", msg, []string{`\Seen`}, time.Now())
	if err != nil || uid != 1 {
		t.Fatalf("client APPEND: uid %d, %v", uid, err)
	}
	// A different message still gets stored.
	if _, uid, err = e.alice.Append(ctx, "Sent", outMsg(bob, "other"), nil, time.Now()); err != nil || uid != 2 {
		t.Fatalf("other APPEND: uid %d, %v", uid, err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := countMessages(t, e.alice.Account, "Sent"); n != 2 {
		t.Fatalf("Sent holds %d messages, want 2", n)
	}
	if n := countMessages(t, e.bob.Account, "INBOX"); n != 1 {
		t.Fatalf("bob holds %d messages, want 1", n)
	}
	if q := queued(t, e.env.Store); len(q) != 1 {
		t.Fatalf("queue holds %d entries, want 1", len(q))
	}

	// Signed plain, through a router built from the pieces.
	if err := r2.Send(ctx, alice, []string{"erin@ext.test"}, outMsg("erin@ext.test", "signed")); err != nil {
		t.Fatal(err)
	}
	q = queued(t, e.env.Store)
	var signed []byte
	for _, en := range q {
		if bytes.Contains(en.Payload, []byte("multipart/signed")) {
			signed = en.Payload
		}
	}
	if signed == nil || !bytes.Contains(signed, []byte("Subject: routed signed")) {
		t.Fatalf("no signed payload in %d entries", len(q))
	}
}

// TestRouterKeyPinning: trust on first use for internal recipients; a
// changed key is refused with a reason naming the address until Trust.
func TestRouterKeyPinning(t *testing.T) {
	e := newRouterEnv(t, PolicyRefuse)
	ctx := context.Background()
	if err := e.router.Send(ctx, alice, []string{bob}, outMsg(bob, "pin1")); err != nil {
		t.Fatal(err)
	}
	list, _ := e.contacts.List()
	if len(list) != 1 || list[0].Source != SourcePinned || list[0].Fingerprint != e.bob.Key().Fingerprint() {
		t.Fatalf("pins %+v", list)
	}
	newKey, err := pgp.GenerateKey("Bob", bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bob.Server().SetPublicKey(ctx, newKey.PublicBinary()); err != nil {
		t.Fatal(err)
	}
	err = e.router.Send(ctx, alice, []string{bob}, outMsg(bob, "pin2"))
	var se *SendError
	if !errors.Is(err, ErrKeyChanged) || !errors.As(err, &se) || !strings.Contains(se.PublicMessage(), bob) ||
		!strings.Contains(se.PublicMessage(), "contacts trust") {
		t.Fatalf("changed key: %v", err)
	}
	// The contacts command runs in another process: open the file anew.
	c2, err := OpenContactsDir(e.aliceDir, testPass)
	if err != nil {
		t.Fatal(err)
	}
	if fp, err := c2.Trust(bob); err != nil || fp != newKey.Fingerprint() {
		t.Fatalf("Trust: %s, %v", fp, err)
	}
	if _, err := c2.Trust(bob); !errors.Is(err, ErrNothingToTrust) {
		t.Fatalf("second Trust: %v", err)
	}
	if err := e.router.Send(ctx, alice, []string{bob}, outMsg(bob, "pin3")); err != nil {
		t.Fatalf("after Trust: %v", err)
	}
}

// TestContactsFile: the keyring persists sealed (no address in clear),
// Remove works, and a file not signed by the account is refused.
func TestContactsFile(t *testing.T) {
	dir := t.TempDir()
	own, err := pgp.GenerateKey("Own", "own@example.org")
	if err != nil {
		t.Fatal(err)
	}
	path := ContactsPath(dir)
	c, err := OpenContacts(path, own)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := pgp.GenerateKey("Dave", "dave@ext.test")
	if added, err := c.Import([]byte(k.PublicArmored())); err != nil || len(added) != 1 {
		t.Fatalf("Import: %v %+v", err, added)
	}
	if _, err := c.Import([]byte("garbage")); err == nil {
		t.Fatal("garbage imported")
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("dave@ext.test")) {
		t.Fatal("contacts file holds an address in clear")
	}
	c2, err := OpenContacts(path, own)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c2.keyringKey("DAVE@ext.test"); err != nil || got == nil || got.Fingerprint() != k.Fingerprint() {
		t.Fatalf("reopened keyring: %v", err)
	}
	if err := c2.Remove("dave@ext.test"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Remove("dave@ext.test"); !errors.Is(err, ErrContactNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	// c sees c2's change (the file changed on disk).
	if got, _ := c.keyringKey("dave@ext.test"); got != nil {
		t.Fatal("stale keyring after another process removed the key")
	}
	// Someone else's file, encrypted to us but not signed by us.
	other, _ := pgp.GenerateKey("Mallory", "mallory@example.org")
	forged, _ := pgp.Seal([]byte(`{"version":1}`), []*pgp.Key{own.Public()}, pgp.SealOptions{Signer: other})
	if err := os.WriteFile(path, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenContacts(path, own); !errors.Is(err, ErrContactsDamaged) {
		t.Fatalf("forged file: %v", err)
	}
}
