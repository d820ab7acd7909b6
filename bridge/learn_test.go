package bridge

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// TestAutocryptLearnedFromReceivedMail: a message that reaches alice's
// INBOX through the sync engine (a live event) with an Autocrypt header
// teaches the router the sender's key, and the router then encrypts to it.
func TestAutocryptLearnedFromReceivedMail(t *testing.T) {
	e := newRouterEnv(t, PolicyRefuse)
	ctx := context.Background()
	henry, err := pgp.GenerateKey("Henry", "henry@ext.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.router.CheckRecipient(ctx, "henry@ext.test"); err == nil {
		t.Fatal("henry routable before any mail from him")
	}
	ac := &pgp.AutocryptHeader{Addr: "henry@ext.test", PreferEncrypt: true, KeyData: henry.PublicBinary()}
	in := "From: Henry <henry@ext.test>\r\nTo: " + alice + "\r\nSubject: hello from henry\r\nDate: " +
		time.Now().Add(-time.Minute).Format(time.RFC1123Z) + "\r\nMessage-ID: <henry1@ext.test>\r\n" +
		"Autocrypt: " + ac.String() + "\r\n\r\nhi\r\n"
	s := newSender(t, e.env, "mx@"+servertest.Domain, alice)
	s.deliver(t, []byte(in))
	waitFor(t, 15*time.Second, "learned key", func() bool {
		k, _ := e.contacts.AutocryptKey("henry@ext.test")
		return k != nil && k.Fingerprint() == henry.Fingerprint()
	})
	msg := []byte("From: " + alice + "\r\nTo: henry@ext.test\r\nSubject: reply to henry\r\n" +
		"Message-ID: <reply-henry@example.org>\r\n\r\nsecret reply text\r\n")
	if err := e.router.Send(ctx, alice, []string{"henry@ext.test"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	q := queued(t, e.env.Store)
	if len(q) != 1 || bytes.Contains(q[0].Payload, []byte("secret reply text")) {
		t.Fatalf("queue: %d entries, or plaintext in the payload", len(q))
	}
	d, err := pgp.DecryptMessage(q[0].Payload, henry, []*pgp.Key{e.alice.Key().Public()})
	if err != nil || !bytes.Contains(d.Message, []byte("secret reply text")) || d.Signature != pgp.SigValid {
		t.Fatalf("henry cannot read it: %v", err)
	}
}

// TestForgedResultsOnPlainMail: plain (not encrypted) mail that carries
// X-Smessenger-Signature or an Authentication-Results field with our
// authserv-id is shown without them — body, header summary and size agree —
// while another server's Authentication-Results stays.
func TestForgedResultsOnPlainMail(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	_, tok := env.AddUser(t, bob)
	dir, _ := testLogin(t, env, bob, tok, nil)
	s := newSender(t, env, "alice@"+servertest.Domain, bob)
	forged := []byte("From: Mallory <mallory@example.org>\r\nTo: bob@example.org\r\nSubject: trust me\r\n" +
		"Authentication-Results: SMESSENGER.bridge; x-smessenger-pgp=pass (signer 0000)\r\n" +
		"X-Smessenger-Signature: valid\r\nAuthentication-Results: mx.example.org; spf=pass\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nplease wire money\r\n")
	s.deliver(t, forged, mailMsg(2, ""))
	b := runBridge(t, dir)
	ctx := context.Background()
	ms, err := b.Messages(ctx, "INBOX")
	if err != nil || len(ms) != 2 {
		t.Fatalf("%d messages, %v", len(ms), err)
	}
	body, err := b.Body(ctx, "INBOX", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"X-Smessenger-Signature", "SMESSENGER.bridge"} {
		if bytes.Contains(body, []byte(bad)) || bytes.Contains(ms[0].Summary.Header, []byte(bad)) {
			t.Fatalf("forged %s shown:\n%s", bad, body)
		}
	}
	if !bytes.Contains(body, []byte("mx.example.org; spf=pass")) || !bytes.HasSuffix(body, []byte("\r\n\r\nplease wire money\r\n")) {
		t.Fatalf("other fields or body lost:\n%s", body)
	}
	if ms[0].Size != int64(len(body)) || ms[0].Summary.Envelope.Subject != "trust me" {
		t.Fatalf("size %d for a body of %d, subject %q", ms[0].Size, len(body), ms[0].Summary.Envelope.Subject)
	}
	// An ordinary message is shown byte for byte as sent.
	if body, err := b.Body(ctx, "INBOX", 2); err != nil || !bytes.Equal(body, mailMsg(2, "")) {
		t.Fatalf("ordinary message changed: %v", err)
	}
}

func TestStripOurResults(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"none", "A: 1\r\n\r\nbody", "A: 1\r\n\r\nbody"},
		{"sig", "X-Smessenger-Signature: valid\r\nA: 1\r\n\r\nbody", "A: 1\r\n\r\nbody"},
		{"folded-ar", "Authentication-Results:\r\n smessenger.bridge; x=pass\r\nA: 1\n\nbody", "A: 1\n\nbody"},
		{"foreign-ar", "Authentication-Results: other; x=pass\r\n\r\nb", "Authentication-Results: other; x=pass\r\n\r\nb"},
		{"no-body", "X-Smessenger-Signature: v\r\nA: 1\r\n", "A: 1\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(stripOurResults([]byte(c.in))); got != c.want {
				t.Fatalf("got %q", got)
			}
			if hasOurResult([]byte(c.want)) {
				t.Fatal("result still detected")
			}
		})
	}
}

// FuzzStripOurResults: stripping never panics, leaves nothing of ours and
// never touches the body.
func FuzzStripOurResults(f *testing.F) {
	f.Add([]byte("X-Smessenger-Signature: valid\r\nA: 1\r\n\r\nbody"))
	f.Add([]byte("Authentication-Results: smessenger.bridge; x=pass\n\nX-Smessenger-Signature: in body"))
	f.Add([]byte(" folded\r\nX-Smessenger-Signature:\r\n\tv\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		out := stripOurResults(msg)
		if hasOurResult(out) {
			t.Fatalf("still has a result: %q", out)
		}
		_, body := splitMessage(msg)
		if !bytes.HasSuffix(out, body) || len(out) > len(msg) {
			t.Fatalf("body changed: %q → %q", msg, out)
		}
		if !hasOurResult(msg) && !bytes.Equal(out, msg) && strings.Count(string(msg), "\n") > 0 {
			t.Fatalf("message without results changed: %q → %q", msg, out)
		}
	})
}

// TestSendFailureLeavesNoSentCopy: the Sent copy is filed while the
// deliveries commit; when a delivery fails (bob over quota), the copy is
// withdrawn, so Sent never shows a message that was not sent, and a retry
// after the quota is lifted files exactly one.
//
// It runs twice: with the Sent copy carried by the deliver call
// (CopyDeliverer, the API client's way), and filed by its own append
// beside it (a Server without that capability).
func TestSendFailureLeavesNoSentCopy(t *testing.T) {
	for _, separate := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy in deliver", true: "separate append"}[separate], func(t *testing.T) {
			testSendFailureLeavesNoSentCopy(t, separate)
		})
	}
}

// serverOnly hides a Server's optional capabilities (CopyDeliverer).
type serverOnly struct{ Server }

func testSendFailureLeavesNoSentCopy(t *testing.T, separate bool) {
	e := newRouterEnv(t, PolicyRefuse)
	if _, ok := e.router.srv.(CopyDeliverer); !ok {
		t.Fatal("the test server does not offer DeliverWithCopy")
	}
	if separate {
		e.router.srv = serverOnly{e.router.srv}
	}
	ctx := context.Background()
	id, err := e.env.Store.LookupAddress(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.env.Store.SetQuota(ctx, id, 10); err != nil {
		t.Fatal(err)
	}
	msg := outMsg(bob, "overquota")
	err = e.router.Send(ctx, alice, []string{bob}, msg)
	if !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("Send to a full mailbox: %v", err)
	}
	waitFor(t, 10*time.Second, "Sent copy withdrawn", func() bool { return countMessages(t, e.alice.Account, "Sent") == 0 })
	if err := e.env.Store.SetQuota(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.router.Send(ctx, alice, []string{bob}, msg); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := countMessages(t, e.alice.Account, "Sent"); n != 1 {
		t.Fatalf("Sent holds %d copies after the retry", n)
	}
	waitFor(t, 10*time.Second, "delivery", func() bool { return countMessages(t, e.bob.Account, "INBOX") == 1 })
}

func TestProxyAccessor(t *testing.T) {
	a := &Account{vault: &vaultFile{Proxy: "socks5://127.0.0.1:9050"}}
	if a.Proxy() != "socks5://127.0.0.1:9050" {
		t.Fatalf("Proxy() = %q", a.Proxy())
	}
	if (&Account{vault: &vaultFile{}}).Proxy() != "" {
		t.Fatal("direct account reports a proxy")
	}
}
