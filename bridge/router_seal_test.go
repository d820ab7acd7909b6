package bridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"smessenger/internal/server/servertest"
	"smessenger/internal/store"
	"smessenger/pgp"
)

// blobKeyIDs lists the key IDs of a sealed blob's PKESK packets, in order.
func blobKeyIDs(t *testing.T, blob []byte) []uint64 {
	t.Helper()
	pr := packet.NewReader(bytes.NewReader(blob))
	var ids []uint64
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return ids
		}
		if err != nil {
			t.Fatalf("blob packets: %v", err)
		}
		ek, ok := p.(*packet.EncryptedKey)
		if !ok {
			return ids // the encrypted data: no more PKESKs
		}
		ids = append(ids, ek.KeyId)
	}
}

// encKeyID is the ID of k's encryption subkey.
func encKeyID(t *testing.T, k *pgp.Key) uint64 {
	t.Helper()
	for _, sk := range k.Entity().Subkeys {
		if sk.PublicKey.PubKeyAlgo.CanEncrypt() {
			return sk.PublicKey.KeyId
		}
	}
	t.Fatal("no encryption subkey")
	return 0
}

// storedBlobs returns the blobs of the newest message in address's mailbox,
// read from the server's store.
func storedBlobs(t *testing.T, st store.Store, address, mailbox string) (header, body []byte) {
	t.Helper()
	ctx := context.Background()
	id, err := st.LookupAddress(ctx, address)
	if err != nil {
		t.Fatal(err)
	}
	var metas []store.MessageMeta
	waitFor(t, 10*time.Second, address+" "+mailbox, func() bool {
		metas, err = st.ListMessages(ctx, id, mailbox, 1)
		return err == nil && len(metas) > 0
	})
	m := metas[len(metas)-1]
	hbs, err := st.HeaderBlobs(ctx, id, []store.MessageID{m.ID})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := st.BodyBlob(ctx, id, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return hbs[0], bb
}

func sortedIDs(ids ...uint64) []uint64 {
	slices.Sort(ids)
	return ids
}

// TestInternalSealingGroups: the internal recipients named in To/Cc share
// one sealing, which the Sent copy reuses when it is the same message (no
// Bcc): one session key, a PKESK for each of them and the sender. A Bcc
// recipient's blobs name only their own key, nobody else's blobs name
// theirs, and the Sent copy (which keeps the Bcc field) is sealed on its
// own. Every copy still opens for its owner.
func TestInternalSealingGroups(t *testing.T) {
	e := newRouterEnv(t, PolicyRefuse)
	ctx := context.Background()
	carolAddr := "carol@" + servertest.Domain
	daveAddr := "dave@" + servertest.Domain
	var keys = map[string]*pgp.Key{alice: e.alice.Key(), bob: e.bob.Key()}
	for _, addr := range []string{carolAddr, daveAddr} {
		_, tok := e.env.AddUser(t, addr)
		dir, _ := testLogin(t, e.env, addr, tok, nil)
		keys[addr] = runBridge(t, dir).Key()
	}
	ids := map[string]uint64{}
	for addr, k := range keys {
		ids[addr] = encKeyID(t, k)
	}

	// To bob, Cc carol, no Bcc.
	msg := []byte("From: " + alice + "\r\nTo: " + bob + "\r\nCc: " + carolAddr +
		"\r\nSubject: shared\r\nMessage-ID: <shared@example.org>\r\n\r\nfor bob and carol\r\n")
	if err := e.router.Send(ctx, alice, []string{bob, carolAddr}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	bh, bb := storedBlobs(t, e.env.Store, bob, "INBOX")
	ch, cb := storedBlobs(t, e.env.Store, carolAddr, "INBOX")
	sh, sb := storedBlobs(t, e.env.Store, alice, "Sent")
	if !bytes.Equal(bb, cb) || !bytes.Equal(bb, sb) || !bytes.Equal(bh, ch) || !bytes.Equal(bh, sh) {
		t.Fatal("the To/Cc recipients and the Sent copy do not share one sealing")
	}
	want := sortedIDs(ids[bob], ids[carolAddr], ids[alice])
	if got := sortedIDs(blobKeyIDs(t, bb)...); !slices.Equal(got, want) {
		t.Fatalf("shared body blob is sealed to %x, want %x", got, want)
	}
	for _, owner := range []string{bob, carolAddr, alice} {
		got, err := pgp.OpenBodyBlob(bb, keys[owner])
		if err != nil || !bytes.Contains(got, []byte("for bob and carol")) {
			t.Fatalf("%s cannot open the shared blob: %v", owner, err)
		}
	}
	waitFor(t, 10*time.Second, "Sent copy", func() bool { return countMessages(t, e.alice.Account, "Sent") == 1 })
	if sent, err := e.alice.Body(ctx, "Sent", 1); err != nil || !bytes.Contains(sent, []byte("for bob and carol")) {
		t.Fatalf("Sent copy through alice's bridge: %v\n%s", err, sent)
	}

	// To bob, Bcc dave.
	msg = []byte("From: " + alice + "\r\nTo: " + bob + "\r\nBcc: " + daveAddr +
		"\r\nSubject: hidden\r\nMessage-ID: <hidden@example.org>\r\n\r\nbob sees no dave\r\n")
	if err := e.router.Send(ctx, alice, []string{bob, daveAddr}, msg); err != nil {
		t.Fatalf("Send with Bcc: %v", err)
	}
	waitFor(t, 10*time.Second, "second Sent copy", func() bool { return countMessages(t, e.alice.Account, "Sent") == 2 })
	for _, c := range []struct {
		owner, mailbox string
		want           []uint64
	}{
		{bob, "INBOX", []uint64{ids[bob]}},           // no Sent copy shares it: the sender is not needed
		{daveAddr, "INBOX", []uint64{ids[daveAddr]}}, // only dave's key
		{alice, "Sent", []uint64{ids[alice]}},
	} {
		hb, bb := storedBlobs(t, e.env.Store, c.owner, c.mailbox)
		for _, blob := range [][]byte{hb, bb} {
			if got := blobKeyIDs(t, blob); !slices.Equal(got, c.want) {
				t.Fatalf("%s %s blob sealed to %x, want %x", c.owner, c.mailbox, got, c.want)
			}
		}
		if c.owner == bob {
			if got, err := pgp.OpenBodyBlob(bb, keys[bob]); err != nil || bytes.Contains(got, []byte("Bcc")) {
				t.Fatalf("bob's copy: %v\n%s", err, got)
			}
		}
	}
}
