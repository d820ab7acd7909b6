package imapd

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func uidsInBox(t *testing.T, c *imapclient.Client) []imap.UID {
	t.Helper()
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var uids []imap.UID
	for _, m := range msgs {
		uids = append(uids, m.UID)
	}
	return uids
}

func TestStoreExpungeCopyMove(t *testing.T) {
	env := newTestEnv(t, nil)
	for range 5 {
		env.view.deliver("INBOX", simpleMsg)
	}
	var expunged []uint32
	var mu sync.Mutex
	c := env.client(&imapclient.UnilateralDataHandler{Expunge: func(seq uint32) {
		mu.Lock()
		expunged = append(expunged, seq)
		mu.Unlock()
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Label1"}}, nil).Collect()
	if err != nil || len(got) != 2 || !slices.Contains(got[0].Flags, "$Label1") {
		t.Fatalf("STORE +FLAGS: %v %+v", err, got)
	}
	if _, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := env.view.Messages(t.Context(), "INBOX")
	if !hasFlag(msgs[0].Flags, `\Flagged`) || hasFlag(msgs[1].Flags, `\Flagged`) || !hasFlag(msgs[1].Flags, "$Label1") {
		t.Fatalf("flags in view: %v / %v", msgs[0].Flags, msgs[1].Flags)
	}
	// UID EXPUNGE removes only \Deleted messages of its set.
	if err := c.Store(imap.UIDSetNum(3, 4), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	seqs, err := c.UIDExpunge(imap.UIDSetNum(1, 3)).Collect()
	if err != nil {
		t.Fatal(err)
	}
	expunged = append(expunged, seqs...)
	if uids := uidsInBox(t, c); !slices.Equal(uids, []imap.UID{1, 2, 4, 5}) {
		t.Fatalf("after UID EXPUNGE 1,3: %v", uids)
	}
	seqs, err = c.Expunge().Collect()
	if err != nil {
		t.Fatal(err)
	}
	expunged = append(expunged, seqs...)
	if uids := uidsInBox(t, c); !slices.Equal(uids, []imap.UID{1, 2, 5}) {
		t.Fatalf("after EXPUNGE: %v", uids)
	}
	mu.Lock()
	if !slices.Equal(expunged, []uint32{3, 3}) {
		t.Errorf("EXPUNGE responses %v, want [3 3]", expunged)
	}
	mu.Unlock()
	// COPY answers COPYUID with the destination's UIDs.
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := env.view.Mailbox(t.Context(), "Archive")
	if cd.UIDValidity != arch.UIDValidity || cd.SourceUIDs.String() != "1:2" || cd.DestUIDs.String() != "1:2" || arch.Messages != 2 {
		t.Errorf("COPYUID %+v, Archive %+v", cd, arch)
	}
	wantCode(t, "COPY to missing", func() error { _, err := c.Copy(imap.SeqSetNum(1), "Nope").Wait(); return err }(), imap.ResponseCodeTryCreate)
	// MOVE: COPYUID, then EXPUNGE of the source.
	md, err := c.Move(imap.UIDSetNum(5), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if md.DestUIDs.String() != "1" || md.SourceUIDs.String() != "5" {
		t.Errorf("MOVE COPYUID %+v", md)
	}
	if uids := uidsInBox(t, c); !slices.Equal(uids, []imap.UID{1, 2}) {
		t.Fatalf("after MOVE: %v", uids)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "watchers released", func() bool { return env.view.watcherCount() == 0 })
}

// TestIdleSeesOtherDevice: while a client idles, another device adds a
// message, changes flags and expunges one; the client hears each within a
// second.
func TestIdleSeesOtherDevice(t *testing.T) {
	env := newTestEnv(t, nil)
	env.view.deliver("INBOX", simpleMsg)
	env.view.deliver("INBOX", simpleMsg)
	type ev struct {
		kind string
		n    uint32
	}
	events := make(chan ev, 16)
	c := env.client(&imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { events <- ev{"expunge", seq} },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				events <- ev{"exists", *d.NumMessages}
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			buf, _ := m.Collect()
			if buf != nil && slices.Contains(buf.Flags, imap.FlagFlagged) {
				events <- ev{"flags", m.SeqNum}
			}
		},
	})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	expect := func(want ev) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		case <-time.After(time.Second):
			t.Fatalf("no %+v within a second", want)
		}
	}
	env.view.deliver("INBOX", simpleMsg)
	expect(ev{"exists", 3})
	if err := env.view.StoreFlags(t.Context(), "INBOX", []uint32{2}, flagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	expect(ev{"flags", 2})
	if _, err := env.view.Expunge(t.Context(), "INBOX", []uint32{1}); err != nil {
		t.Fatal(err)
	}
	expect(ev{"expunge", 1})
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if uids := uidsInBox(t, c); !slices.Equal(uids, []imap.UID{2, 3}) {
		t.Errorf("after IDLE: %v", uids)
	}
}

// TestConcurrentClientsAgree runs several clients (as Thunderbird opens
// several connections) while another device delivers; they end with the
// same UIDs and flags.
func TestConcurrentClientsAgree(t *testing.T) {
	env := newTestEnv(t, nil)
	const clients, deliveries = 4, 40
	cs := make([]*imapclient.Client, clients)
	for i := range cs {
		cs[i] = env.client(nil)
		if _, err := cs[i].Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range deliveries {
			env.view.deliver("INBOX", fmt.Sprintf("Subject: n%d\n\nbody %d\n", i, i))
		}
	}()
	errs := make(chan error, clients)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect(); err != nil {
					errs <- err
					return
				}
				if j == i {
					// A store racing the deliveries; whatever it hit must
					// not disturb the others.
					c.Store(imap.UIDSetNum(imap.UID(i+1)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Early"}}, nil).Close()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var first []imap.UID
	for i, c := range cs {
		var uids []imap.UID
		eventually(t, "all deliveries visible", func() bool {
			c.Noop().Wait()
			uids = uidsInBox(t, c)
			return len(uids) == deliveries
		})
		if i == 0 {
			first = uids
		} else if !slices.Equal(uids, first) {
			t.Errorf("client %d sees %v, client 0 %v", i, uids, first)
		}
	}
	for i, c := range cs {
		if err := c.Store(imap.UIDSetNum(imap.UID(i+1)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cs {
		msgs, err := c.Fetch(imap.UIDSetNum(1, 2, 3, 4), &imap.FetchOptions{Flags: true}).Collect()
		if err != nil || len(msgs) != 4 {
			t.Fatalf("fetch flags: %v", err)
		}
		for _, m := range msgs {
			if !slices.Contains(m.Flags, imap.FlagSeen) {
				t.Errorf("client %d: message %d lacks \\Seen set by another client", i, m.SeqNum)
			}
		}
	}
}
