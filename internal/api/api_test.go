package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"smessenger/bridge"
	"smessenger/internal/api"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/internal/store/redis"
	"smessenger/internal/testutil/redistest"
)

// TestClientMatchesBridgeServer checks that *api.Client has every method of
// bridge.Server with the same signature, where bridge.WhoAmI and
// bridge.Delivery must be structurally identical to api.WhoAmI and
// api.Delivery (bridge is meant to alias them; then the compile-time
// assertion `var _ bridge.Server = (*api.Client)(nil)` holds).
func TestClientMatchesBridgeServer(t *testing.T) {
	iface := reflect.TypeOf((*bridge.Server)(nil)).Elem()
	ct := reflect.TypeOf((*api.Client)(nil))
	same := map[reflect.Type]reflect.Type{
		reflect.TypeOf(bridge.WhoAmI{}):     reflect.TypeOf(api.WhoAmI{}),
		reflect.TypeOf([]bridge.Delivery{}): reflect.TypeOf([]api.Delivery{}),
	}
	for bt, at := range same {
		if bt.Kind() == reflect.Slice {
			bt, at = bt.Elem(), at.Elem()
		}
		if bt.NumField() != at.NumField() {
			t.Fatalf("%v and %v differ in fields", bt, at)
		}
		for i := 0; i < bt.NumField(); i++ {
			if bt.Field(i).Name != at.Field(i).Name || bt.Field(i).Type != at.Field(i).Type {
				t.Fatalf("%v.%s differs from %v", bt, bt.Field(i).Name, at)
			}
		}
	}
	for i := 0; i < iface.NumMethod(); i++ {
		m := iface.Method(i)
		cm, ok := ct.MethodByName(m.Name)
		if !ok {
			t.Errorf("*api.Client lacks %s", m.Name)
			continue
		}
		ft := cm.Type
		if ft.NumIn()-1 != m.Type.NumIn() || ft.NumOut() != m.Type.NumOut() {
			t.Errorf("%s: arity differs", m.Name)
			continue
		}
		eq := func(a, b reflect.Type) bool { return a == b || same[a] == b }
		for j := 0; j < m.Type.NumIn(); j++ {
			if !eq(m.Type.In(j), ft.In(j+1)) {
				t.Errorf("%s: parameter %d is %v, want %v", m.Name, j, ft.In(j+1), m.Type.In(j))
			}
		}
		for j := 0; j < m.Type.NumOut(); j++ {
			if !eq(m.Type.Out(j), ft.Out(j)) {
				t.Errorf("%s: result %d is %v, want %v", m.Name, j, ft.Out(j), m.Type.Out(j))
			}
		}
	}
}

func TestAPIBolt(t *testing.T) {
	runAPI(t, servertest.OpenBolt(t))
}

func TestAPIRedis(t *testing.T) {
	url := redistest.Start(t)
	st, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	runAPI(t, st)
}

func runAPI(t *testing.T, st store.Store) {
	env := servertest.Start(t, st, nil)
	alice := env.NewUser(t, "alice@example.org")
	bob := env.NewUser(t, "bob@example.org")
	t.Run("whoami", func(t *testing.T) { testWhoAmI(t, alice) })
	t.Run("directory", func(t *testing.T) { testDirectory(t, alice, bob) })
	t.Run("mailboxes", func(t *testing.T) { testMailboxes(t, alice) })
	t.Run("messages", func(t *testing.T) { testMessages(t, alice) })
	t.Run("deliver", func(t *testing.T) { testDeliver(t, alice, bob) })
	t.Run("submit", func(t *testing.T) { testSubmit(t, env, alice) })
	t.Run("stream", func(t *testing.T) { testStream(t, alice, bob) })
	t.Run("cross-account", func(t *testing.T) { testCrossAccount(t, alice, bob) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func testWhoAmI(t *testing.T, u *servertest.User) {
	w, err := u.Client.WhoAmI(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if w.Account != u.Account || len(w.Addresses) != 1 || w.Addresses[0] != u.Address || w.DeviceID == "" {
		t.Fatalf("whoami = %+v", w)
	}
}

func testDirectory(t *testing.T, alice, bob *servertest.User) {
	key, internal, err := alice.Client.LookupKey(ctx(t), "BOB@example.org")
	if err != nil || !internal || !bytes.Equal(key, bob.Key.PublicBinary()) {
		t.Fatalf("lookup bob: internal=%v err=%v same=%v", internal, err, bytes.Equal(key, bob.Key.PublicBinary()))
	}
	if _, _, err := alice.Client.LookupKey(ctx(t), "someone@elsewhere.net"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("outside address: %v", err)
	}
	if _, _, err := alice.Client.LookupKey(ctx(t), "not an address"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad address: %v", err)
	}
	// A key that is not OpenPGP, and bob's key (wrong user id), are refused
	// and change nothing.
	if err := alice.Client.SetPublicKey(ctx(t), []byte("garbage")); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("garbage key: %v", err)
	}
	if err := alice.Client.SetPublicKey(ctx(t), bob.Key.PublicBinary()); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("key of another address: %v", err)
	}
	key, _, _ = bob.Client.LookupKey(ctx(t), alice.Address)
	if !bytes.Equal(key, alice.Key.PublicBinary()) {
		t.Fatal("a refused SetPublicKey changed the stored key")
	}
}

func testMailboxes(t *testing.T, u *servertest.User) {
	c := ctx(t)
	mbs, err := u.Client.ListMailboxes(c)
	if err != nil || len(mbs) != len(store.DefaultMailboxes) {
		t.Fatalf("list: %d mailboxes, %v", len(mbs), err)
	}
	mb, err := u.Client.CreateMailbox(c, "Work")
	if err != nil || mb.Name != "Work" || mb.UIDValidity == 0 {
		t.Fatalf("create: %+v %v", mb, err)
	}
	if _, err := u.Client.CreateMailbox(c, "Work"); !errors.Is(err, store.ErrMailboxExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := u.Client.CreateMailbox(c, "bad//name"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if err := u.Client.RenameMailbox(c, "Work", "Job"); err != nil {
		t.Fatal(err)
	}
	if err := u.Client.RenameMailbox(c, "INBOX", "Old"); !errors.Is(err, store.ErrMailboxProtected) {
		t.Fatalf("rename INBOX: %v", err)
	}
	if err := u.Client.RenameMailbox(c, "Nope", "X"); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("rename missing: %v", err)
	}
	if err := u.Client.SetSubscribed(c, "Job", true); err != nil {
		t.Fatal(err)
	}
	mbs, _ = u.Client.ListMailboxes(c)
	found := false
	for _, m := range mbs {
		if m.Name == "Job" {
			found = m.Subscribed && m.UIDValidity == mb.UIDValidity
		}
	}
	if !found {
		t.Fatal("renamed mailbox lost its subscription or UIDVALIDITY")
	}
	if err := u.Client.DeleteMailbox(c, "Job"); err != nil {
		t.Fatal(err)
	}
	if err := u.Client.DeleteMailbox(c, "Job"); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if err := u.Client.DeleteMailbox(c, "INBOX"); !errors.Is(err, store.ErrMailboxProtected) {
		t.Fatalf("delete INBOX: %v", err)
	}
}

func testMessages(t *testing.T, u *servertest.User) {
	c := ctx(t)
	var ids []store.MessageID
	for i := 0; i < 3; i++ {
		m, err := u.Client.Append(c, "Drafts", store.NewMessage{
			Flags: []string{`\Draft`}, Size: 100, HeaderBlob: []byte{'h', byte(i)}, BodyBlob: bytes.Repeat([]byte{byte(i)}, 5000),
		})
		if err != nil || m.UID != uint32(i+1) {
			t.Fatalf("append %d: %+v %v", i, m, err)
		}
		ids = append(ids, m.ID)
	}
	if _, err := u.Client.Append(c, "Nope", store.NewMessage{HeaderBlob: []byte("h"), BodyBlob: []byte("b")}); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("append to missing: %v", err)
	}
	list, err := u.Client.ListMessages(c, "Drafts", 2)
	if err != nil || len(list) != 2 || list[0].UID != 2 {
		t.Fatalf("list since 2: %+v %v", list, err)
	}
	hb, err := u.Client.HeaderBlobs(c, []store.MessageID{ids[2], ids[0]})
	if err != nil || string(hb[0]) != "h\x02" || string(hb[1]) != "h\x00" {
		t.Fatalf("header blobs: %q %v", hb, err)
	}
	rc, err := u.Client.BodyBlob(c, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(body, bytes.Repeat([]byte{1}, 5000)) {
		t.Fatal("body blob differs")
	}
	metas, err := u.Client.StoreFlags(c, "Drafts", []uint32{1, 2}, store.FlagsAdd, []string{`\Seen`})
	if err != nil || len(metas) != 2 {
		t.Fatalf("flags: %+v %v", metas, err)
	}
	pairs, err := u.Client.Copy(c, "Drafts", []uint32{1}, "Archive")
	if err != nil || len(pairs) != 1 || pairs[0].Src != 1 {
		t.Fatalf("copy: %v %v", pairs, err)
	}
	pairs, err = u.Client.Move(c, "Drafts", []uint32{2}, "Trash")
	if err != nil || len(pairs) != 1 {
		t.Fatalf("move: %v %v", pairs, err)
	}
	if _, err := u.Client.Move(c, "Drafts", []uint32{3}, "Nope"); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("move to missing: %v", err)
	}
	if _, err := u.Client.StoreFlags(c, "Drafts", []uint32{3}, store.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	gone, err := u.Client.Expunge(c, "Drafts", nil)
	if err != nil || len(gone) != 1 || gone[0] != 3 {
		t.Fatalf("expunge: %v %v", gone, err)
	}
	evs, err := u.Client.EventsSince(c, 0, 1000)
	if err != nil || len(evs) == 0 || evs[0].Seq != 1 {
		t.Fatalf("events: %d %v", len(evs), err)
	}
	if _, err := u.Client.EventsSince(c, 0, 5000); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("events over limit: %v", err)
	}
}

func testDeliver(t *testing.T, alice, bob *servertest.User) {
	c := ctx(t)
	before, _ := bob.Client.ListMessages(c, "INBOX", 1)
	err := alice.Client.Deliver(c, []api.Delivery{
		{Recipient: bob.Address, Size: 10, HeaderBlob: []byte("H"), BodyBlob: []byte("B")},
		{Recipient: "ghost@example.org", Size: 10, HeaderBlob: []byte("H"), BodyBlob: []byte("B")},
	})
	if !errors.Is(err, api.ErrUnknownRecipient) || !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "ghost@example.org") {
		t.Fatalf("unknown recipient: %v", err)
	}
	after, _ := bob.Client.ListMessages(c, "INBOX", 1)
	if len(after) != len(before) {
		t.Fatal("a refused delivery wrote to a recipient")
	}
	err = alice.Client.Deliver(c, []api.Delivery{
		{Recipient: bob.Address, Size: 10, HeaderBlob: []byte("H1"), BodyBlob: []byte("B1")},
		{Recipient: alice.Address, Size: 10, HeaderBlob: []byte("H2"), BodyBlob: []byte("B2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	after, _ = bob.Client.ListMessages(c, "INBOX", 1)
	if len(after) != len(before)+1 {
		t.Fatalf("bob has %d messages, want %d", len(after), len(before)+1)
	}
	hb, err := bob.Client.HeaderBlobs(c, []store.MessageID{after[len(after)-1].ID})
	if err != nil || string(hb[0]) != "H1" {
		t.Fatalf("bob's header blob %q %v", hb, err)
	}
}

func testSubmit(t *testing.T, env *servertest.Env, u *servertest.User) {
	c := ctx(t)
	id, err := u.Client.Submit(c, u.Address, []string{"x@outside.net"}, []byte("From: a\r\n\r\nhi"))
	if err != nil || id == "" {
		t.Fatalf("submit: %q %v", id, err)
	}
	e, err := env.Store.GetQueueEntry(c, id)
	if err != nil || e.Account != u.Account || string(e.Payload) != "From: a\r\n\r\nhi" || e.Expires.Before(time.Now().Add(4*24*time.Hour)) {
		t.Fatalf("queued entry %+v %v", e, err)
	}
	if _, err := u.Client.Submit(c, "bob@example.org", []string{"x@outside.net"}, []byte("x")); !errors.Is(err, api.ErrForbidden) {
		t.Fatalf("foreign sender: %v", err)
	}
}

func testStream(t *testing.T, alice, bob *servertest.User) {
	last, err := bob.Client.EventsSince(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	after := last[len(last)-1].Seq
	sctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	got := make(chan store.Event, 4)
	done := make(chan error, 1)
	go func() {
		done <- bob.Client.StreamEvents(sctx, after-1, func(ev store.Event) error { got <- ev; return nil })
	}()
	if ev := <-got; ev.Seq != after {
		t.Fatalf("backlog event %d, want %d", ev.Seq, after)
	}
	if err := alice.Client.Deliver(ctx(t), []api.Delivery{{Recipient: bob.Address, Size: 1, HeaderBlob: []byte("h"), BodyBlob: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Kind != store.EventMessageAdded || ev.Mailbox != "INBOX" || ev.Seq != after+1 {
			t.Fatalf("live event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no live event")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v", err)
	}
}

func testCrossAccount(t *testing.T, alice, bob *servertest.User) {
	c := ctx(t)
	if _, err := bob.Client.CreateMailbox(c, "BobSecret"); err != nil {
		t.Fatal(err)
	}
	bm, err := bob.Client.Append(c, "BobSecret", store.NewMessage{Size: 1, HeaderBlob: []byte("bob-h"), BodyBlob: []byte("bob-b")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Client.ListMessages(c, "BobSecret", 1); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("alice lists bob's mailbox: %v", err)
	}
	if hb, err := alice.Client.HeaderBlobs(c, []store.MessageID{bm.ID}); !errors.Is(err, store.ErrMessageNotFound) || hb != nil {
		t.Fatalf("alice fetches bob's header: %q %v", hb, err)
	}
	if _, err := alice.Client.BodyBlob(c, bm.ID); !errors.Is(err, store.ErrMessageNotFound) {
		// alice may have a message with the same id number in her own
		// account; ids are per account, so then she gets her own blob.
		rc, err2 := alice.Client.BodyBlob(c, bm.ID)
		if err2 == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) == "bob-b" {
				t.Fatal("alice read bob's body blob")
			}
		} else {
			t.Fatalf("alice fetches bob's body: %v", err)
		}
	}
	if err := alice.Client.DeleteMailbox(c, "BobSecret"); !errors.Is(err, store.ErrMailboxNotFound) {
		t.Fatalf("alice deletes bob's mailbox: %v", err)
	}
	aev, _ := alice.Client.EventsSince(c, 0, 1000)
	for _, ev := range aev {
		if ev.Mailbox == "BobSecret" {
			t.Fatal("bob's event in alice's log")
		}
	}
	if _, err := bob.Client.ListMessages(c, "BobSecret", 1); err != nil {
		t.Fatal("bob lost his mailbox")
	}
}
