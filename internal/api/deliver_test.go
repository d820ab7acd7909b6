package api_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"smessenger/internal/api"
	"smessenger/internal/server"
	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/internal/store/redis"
	"smessenger/internal/testutil/redistest"
)

// TestDeliverManyRecipients: a delivery to several recipients appends to
// each of them (concurrently, so one commit can carry them all); when one
// is over quota the error names that one and the others keep their copy.
func TestDeliverManyRecipients(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	sender := env.NewUser(t, "many@example.org")
	c := ctx(t)
	var ds []api.Delivery
	var accts []store.AccountID
	for i := 0; i < 6; i++ {
		addr := fmt.Sprintf("r%d@example.org", i)
		id, _ := env.AddUser(t, addr)
		accts = append(accts, id)
		ds = append(ds, api.Delivery{Recipient: addr, Size: 10,
			HeaderBlob: []byte("H" + addr), BodyBlob: []byte("B" + addr)})
	}
	if err := sender.Client.Deliver(c, ds); err != nil {
		t.Fatal(err)
	}
	for i, id := range accts {
		list, err := env.Store.ListMessages(c, id, "INBOX", 1)
		if err != nil || len(list) != 1 {
			t.Fatalf("recipient %d has %d messages: %v", i, len(list), err)
		}
		hb, err := env.Store.HeaderBlobs(c, id, []store.MessageID{list[0].ID})
		if err != nil || string(hb[0]) != "H"+ds[i].Recipient {
			t.Fatalf("recipient %d got header %q: %v", i, hb, err)
		}
	}

	full := accts[3]
	if err := env.Store.SetQuota(c, full, 15); err != nil {
		t.Fatal(err)
	}
	err := sender.Client.Deliver(c, ds)
	if !errors.Is(err, store.ErrQuotaExceeded) || !strings.Contains(err.Error(), ds[3].Recipient) {
		t.Fatalf("delivery with a full mailbox: %v", err)
	}
	for i, id := range accts {
		list, _ := env.Store.ListMessages(c, id, "INBOX", 1)
		want := 2
		if id == full {
			want = 1
		}
		if len(list) != want {
			t.Fatalf("recipient %d has %d messages, want %d", i, len(list), want)
		}
	}
}

// TestConcurrentDeliveriesGrouped: concurrent senders on bbolt all get
// their messages through the write gate, none twice, and the gate's
// metric counts every delivery in exactly one group.
func TestConcurrentDeliveriesGrouped(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), func(cfg *server.Config) {
		cfg.Limits.CallsPerSecond = -1
	})
	const senders, each = 8, 5
	rcpt, _ := env.AddUser(t, "sink@example.org")
	var clients []*api.Client
	for i := 0; i < senders; i++ {
		clients = append(clients, env.NewUser(t, fmt.Sprintf("snd%d@example.org", i)).Client)
	}
	c := ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for i, cl := range clients {
		wg.Go(func() {
			for k := 0; k < each; k++ {
				body := []byte(fmt.Sprintf("s%d-m%d", i, k))
				errs <- cl.Deliver(c, []api.Delivery{{Recipient: "sink@example.org", Size: 1, HeaderBlob: body, BodyBlob: body}})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, err := env.Store.ListMessages(c, rcpt, "INBOX", 1)
	if err != nil || len(list) != senders*each {
		t.Fatalf("recipient has %d messages, want %d: %v", len(list), senders*each, err)
	}
	seen := map[string]bool{}
	for _, m := range list {
		hb, err := env.Store.HeaderBlobs(c, rcpt, []store.MessageID{m.ID})
		if err != nil || seen[string(hb[0])] {
			t.Fatalf("message %q twice or unreadable: %v", hb, err)
		}
		seen[string(hb[0])] = true
	}
	sum, count := writeGroupMetric(t, env)
	if sum != senders*each || count < 1 || count > sum {
		t.Fatalf("write groups: %d writes in %d groups, for %d deliveries", sum, count, senders*each)
	}
}

// writeGroupMetric reads the node's api_write_group_size histogram.
func writeGroupMetric(t *testing.T, env *servertest.Env) (sum, count int) {
	t.Helper()
	mfs, err := env.Node.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "smessenger_api_write_group_size" {
			h := mf.GetMetric()[0].GetHistogram()
			return int(h.GetSampleSum()), int(h.GetSampleCount())
		}
	}
	t.Fatal("no smessenger_api_write_group_size metric")
	return 0, 0
}

// TestDeliverWithCopy: a deliver call that carries the sender's own copy
// stores both; a failed delivery leaves no copy behind; a copy that cannot
// be stored is reported beside the deliveries' success.
func TestDeliverWithCopy(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{{"bolt", func(t *testing.T) store.Store { return servertest.OpenBolt(t) }}, {"redis", openRedis}} {
		t.Run(tc.name, func(t *testing.T) {
			env := servertest.Start(t, tc.open(t), nil)
			sender := env.NewUser(t, "copier@example.org")
			rcpt, _ := env.AddUser(t, "copied@example.org")
			c := ctx(t)
			d := []api.Delivery{{Recipient: "copied@example.org", Size: 10, HeaderBlob: []byte("H"), BodyBlob: []byte("B")}}
			cp := store.NewMessage{Flags: []string{store.FlagSeen}, Size: 10, HeaderBlob: []byte("CH"), BodyBlob: []byte("CB")}

			meta, copyErr, err := sender.Client.DeliverWithCopy(c, d, "Sent", cp)
			if err != nil || copyErr != nil || meta.UID == 0 {
				t.Fatalf("deliver with copy: meta %+v, copy error %v, error %v", meta, copyErr, err)
			}
			sent, _ := env.Store.ListMessages(c, sender.Account, "Sent", 1)
			inbox, _ := env.Store.ListMessages(c, rcpt, "INBOX", 1)
			if len(sent) != 1 || sent[0].UID != meta.UID || !store.HasFlag(sent[0].Flags, store.FlagSeen) || len(inbox) != 1 {
				t.Fatalf("after deliver with copy: Sent %+v, recipient's INBOX %+v", sent, inbox)
			}
			if b, err := env.Store.BodyBlob(c, sender.Account, sent[0].ID); err != nil || string(b) != "CB" {
				t.Fatalf("copy body %q, %v", b, err)
			}

			// Blobs shared by the delivery and the copy cross once and land
			// in both mailboxes.
			shared := []api.Delivery{{Recipient: "copied@example.org", Size: 10, HeaderBlob: []byte("SH"), BodyBlob: []byte("SB")}}
			scp := store.NewMessage{Size: 10, HeaderBlob: []byte("SH"), BodyBlob: []byte("SB")}
			smeta, copyErr, err := sender.Client.DeliverWithCopy(c, shared, "Sent", scp)
			if err != nil || copyErr != nil {
				t.Fatalf("deliver with a shared copy: %v, %v", copyErr, err)
			}
			inbox, _ = env.Store.ListMessages(c, rcpt, "INBOX", 2)
			sentB, err1 := env.Store.BodyBlob(c, sender.Account, smeta.ID)
			var inboxB []byte
			if len(inbox) == 1 {
				inboxB, _ = env.Store.BodyBlob(c, rcpt, inbox[0].ID)
			}
			if err1 != nil || string(sentB) != "SB" || string(inboxB) != "SB" {
				t.Fatalf("shared blobs: Sent %q (%v), INBOX %q", sentB, err1, inboxB)
			}

			// A delivery over quota: the error names the recipient, and the
			// copy it carried is gone again.
			if err := env.Store.SetQuota(c, rcpt, 15); err != nil {
				t.Fatal(err)
			}
			if _, _, err := sender.Client.DeliverWithCopy(c, d, "Sent", cp); !errors.Is(err, store.ErrQuotaExceeded) {
				t.Fatalf("delivery over quota: %v", err)
			}
			if sent, _ := env.Store.ListMessages(c, sender.Account, "Sent", 1); len(sent) != 2 {
				t.Fatalf("a failed delivery left %d copies in Sent, want the two before", len(sent))
			}
			// An unknown recipient: nothing is written at all.
			bad := []api.Delivery{{Recipient: "nobody@example.org", Size: 1, HeaderBlob: []byte("h"), BodyBlob: []byte("b")}}
			if _, _, err := sender.Client.DeliverWithCopy(c, bad, "Sent", cp); !errors.Is(err, api.ErrUnknownRecipient) {
				t.Fatalf("unknown recipient: %v", err)
			}
			if sent, _ := env.Store.ListMessages(c, sender.Account, "Sent", 1); len(sent) != 2 {
				t.Fatalf("an unknown recipient left %d copies in Sent", len(sent))
			}

			// A copy to a mailbox that does not exist: delivered, copy refused.
			if err := env.Store.SetQuota(c, rcpt, 0); err != nil {
				t.Fatal(err)
			}
			_, copyErr, err = sender.Client.DeliverWithCopy(c, d, "No Such Box", cp)
			if err != nil || !errors.Is(copyErr, api.ErrCopyFailed) {
				t.Fatalf("copy to a missing mailbox: copy error %v, error %v", copyErr, err)
			}
			if inbox, _ := env.Store.ListMessages(c, rcpt, "INBOX", 1); len(inbox) != 3 {
				t.Fatalf("recipient has %d messages, want 3", len(inbox))
			}
		})
	}
}

func openRedis(t *testing.T) store.Store {
	st, err := redis.Open(context.Background(), redistest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
