package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"smessenger/internal/store"
)

func testAccounts(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a, err := s.CreateAccount(ctx, "Alice@Example.ORG", 5000)
	must(t, "CreateAccount", err)
	if a.ID == "" || a.Primary != "alice@example.org" || !slices.Equal(a.Addresses, []string{"alice@example.org"}) {
		t.Fatalf("CreateAccount returned %+v", a)
	}
	if a.QuotaBytes != 5000 || a.UsedBytes != 0 || a.Created.IsZero() {
		t.Fatalf("CreateAccount returned %+v", a)
	}
	got, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if got.ID != a.ID || got.Primary != a.Primary || got.QuotaBytes != 5000 || !got.Created.Equal(a.Created) {
		t.Fatalf("GetAccount = %+v, want %+v", got, a)
	}
	id, err := s.LookupAddress(ctx, "ALICE@example.org")
	must(t, "LookupAddress", err)
	if id != a.ID {
		t.Fatalf("LookupAddress = %q, want %q", id, a.ID)
	}
	_, err = s.LookupAddress(ctx, "nobody@example.org")
	mustIs(t, "LookupAddress unknown", err, store.ErrNotFound)

	_, err = s.CreateAccount(ctx, "alice@EXAMPLE.org", 0)
	mustIs(t, "CreateAccount duplicate", err, store.ErrAddressTaken)

	b, err := s.CreateAccount(ctx, "bob@example.org", 0)
	must(t, "CreateAccount bob", err)
	if b.ID == a.ID {
		t.Fatal("two accounts share an id")
	}
	list, err := s.ListAccounts(ctx)
	must(t, "ListAccounts", err)
	seen := map[store.AccountID]bool{}
	for _, acc := range list {
		seen[acc.ID] = true
	}
	if !seen[a.ID] || !seen[b.ID] || len(list) != 2 {
		t.Fatalf("ListAccounts = %+v", list)
	}

	must(t, "SetQuota", s.SetQuota(ctx, a.ID, 9000))
	got, err = s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if got.QuotaBytes != 9000 {
		t.Fatalf("quota after SetQuota = %d", got.QuotaBytes)
	}

	// Every account starts with the default mailboxes, in order.
	mbs, err := s.ListMailboxes(ctx, a.ID)
	must(t, "ListMailboxes", err)
	if len(mbs) != len(store.DefaultMailboxes) {
		t.Fatalf("ListMailboxes = %+v", mbs)
	}
	ids := map[uint64]bool{}
	for i, d := range store.DefaultMailboxes {
		mb := mbs[i]
		if mb.Name != d.Name || mb.SpecialUse != d.SpecialUse || mb.UIDNext < 1 || mb.UIDValidity == 0 || mb.Messages != 0 {
			t.Fatalf("default mailbox %d = %+v, want %s", i, mb, d.Name)
		}
		if ids[mb.ID] {
			t.Fatalf("mailbox id %d reused", mb.ID)
		}
		ids[mb.ID] = true
	}
}

func testAliases(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a, err := s.CreateAccount(ctx, "carol@example.org", 0)
	must(t, "CreateAccount", err)
	b, err := s.CreateAccount(ctx, "dave@example.org", 0)
	must(t, "CreateAccount", err)

	must(t, "AddAlias", s.AddAlias(ctx, a.ID, "Carol.Alias@Example.org"))
	id, err := s.LookupAddress(ctx, "carol.alias@example.org")
	must(t, "LookupAddress alias", err)
	if id != a.ID {
		t.Fatalf("alias resolves to %q, want %q", id, a.ID)
	}
	got, err := s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if !slices.Equal(got.Addresses, []string{"carol@example.org", "carol.alias@example.org"}) {
		t.Fatalf("Addresses = %q", got.Addresses)
	}

	mustIs(t, "AddAlias taken by other", s.AddAlias(ctx, a.ID, "DAVE@example.org"), store.ErrAddressTaken)
	mustIs(t, "AddAlias taken by self", s.AddAlias(ctx, b.ID, "carol.alias@example.org"), store.ErrAddressTaken)
	_, err = s.CreateAccount(ctx, "carol.alias@example.org", 0)
	mustIs(t, "CreateAccount on alias", err, store.ErrAddressTaken)

	mustIs(t, "RemoveAlias primary", s.RemoveAlias(ctx, a.ID, "carol@example.org"), store.ErrInvalid)
	mustIs(t, "RemoveAlias of another account", s.RemoveAlias(ctx, b.ID, "carol.alias@example.org"), store.ErrNotFound)
	must(t, "RemoveAlias", s.RemoveAlias(ctx, a.ID, "CAROL.alias@example.org"))
	_, err = s.LookupAddress(ctx, "carol.alias@example.org")
	mustIs(t, "LookupAddress removed alias", err, store.ErrNotFound)
	got, err = s.GetAccount(ctx, a.ID)
	must(t, "GetAccount", err)
	if !slices.Equal(got.Addresses, []string{"carol@example.org"}) {
		t.Fatalf("Addresses after remove = %q", got.Addresses)
	}
	// A freed alias can be taken by someone else.
	must(t, "AddAlias freed", s.AddAlias(ctx, b.ID, "carol.alias@example.org"))
	mustIs(t, "AddAlias unknown account", s.AddAlias(ctx, "nope", "x@example.org"), store.ErrAccountNotFound)
}

func testDeleteAccount(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	must(t, "AddAlias", s.AddAlias(ctx, a.ID, "gone-alias@example.org"))
	appendN(t, s, a.ID, "INBOX", 2)
	key := bytes.Repeat([]byte{7}, 32)
	_, err := s.AddDevice(ctx, a.ID, key, "laptop")
	must(t, "AddDevice", err)
	other := newAccount(t, s, 0)

	must(t, "DeleteAccount", s.DeleteAccount(ctx, a.ID))
	_, err = s.GetAccount(ctx, a.ID)
	mustIs(t, "GetAccount deleted", err, store.ErrAccountNotFound)
	_, err = s.LookupAddress(ctx, a.Primary)
	mustIs(t, "LookupAddress deleted", err, store.ErrNotFound)
	_, err = s.LookupAddress(ctx, "gone-alias@example.org")
	mustIs(t, "LookupAddress deleted alias", err, store.ErrNotFound)
	_, err = s.DeviceByKey(ctx, key)
	mustIs(t, "DeviceByKey deleted", err, store.ErrDeviceNotFound)
	_, err = s.ListMailboxes(ctx, a.ID)
	mustIs(t, "ListMailboxes deleted", err, store.ErrAccountNotFound)
	mustIs(t, "DeleteAccount twice", s.DeleteAccount(ctx, a.ID), store.ErrAccountNotFound)

	// The address is free again and the other account is untouched.
	_, err = s.CreateAccount(ctx, a.Primary, 0)
	must(t, "CreateAccount reuse", err)
	if _, err := s.GetAccount(ctx, other.ID); err != nil {
		t.Fatalf("other account damaged: %v", err)
	}
	_, err = s.AddDevice(ctx, other.ID, key, "reused key")
	must(t, "AddDevice freed key", err)
}

func testUnknownAccount(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const id = store.AccountID("0123456789abcdef")
	checks := map[string]error{
		"DeleteAccount": s.DeleteAccount(ctx, id),
		"SetQuota":      s.SetQuota(ctx, id, 1),
		"SetPublicKey":  s.SetPublicKey(ctx, id, []byte{1}),
		"AddEnrolToken": s.AddEnrolToken(ctx, id, []byte("h"), time.Now().Add(time.Hour)),
		"CreateMailbox": func() error { _, err := s.CreateMailbox(ctx, id, "x", ""); return err }(),
		"GetAccount":    func() error { _, err := s.GetAccount(ctx, id); return err }(),
		"ListMailboxes": func() error { _, err := s.ListMailboxes(ctx, id); return err }(),
		"GetMailbox":    func() error { _, err := s.GetMailbox(ctx, id, "INBOX"); return err }(),
		"Append":        func() error { _, err := s.Append(ctx, id, "INBOX", msg("a", 1)); return err }(),
		"ListMessages":  func() error { _, err := s.ListMessages(ctx, id, "INBOX", 1); return err }(),
		"AddDevice":     func() error { _, err := s.AddDevice(ctx, id, bytes.Repeat([]byte{9}, 32), "x"); return err }(),
		"ListDevices":   func() error { _, err := s.ListDevices(ctx, id); return err }(),
		"EventsSince":   func() error { _, err := s.EventsSince(ctx, id, 0, 10); return err }(),
		"LastEventSeq":  func() error { _, err := s.LastEventSeq(ctx, id); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, store.ErrAccountNotFound) {
			t.Errorf("%s on unknown account: %v, want ErrAccountNotFound", name, err)
		}
	}
}

func testPublicKey(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	_, err := s.PublicKey(ctx, a.ID)
	mustIs(t, "PublicKey unset", err, store.ErrNotFound)
	must(t, "SetPublicKey", s.SetPublicKey(ctx, a.ID, []byte{0x99, 1, 2, 3}))
	must(t, "SetPublicKey replace", s.SetPublicKey(ctx, a.ID, []byte{0x99, 4, 5}))
	k, err := s.PublicKey(ctx, a.ID)
	must(t, "PublicKey", err)
	if !bytes.Equal(k, []byte{0x99, 4, 5}) {
		t.Fatalf("PublicKey = %x", k)
	}
}

func testEnrolTokens(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	now := time.Now()
	must(t, "AddEnrolToken", s.AddEnrolToken(ctx, a.ID, []byte("hash-1"), now.Add(time.Hour)))
	must(t, "AddEnrolToken", s.AddEnrolToken(ctx, a.ID, []byte("hash-2"), now.Add(time.Minute)))

	id, err := s.ConsumeEnrolToken(ctx, []byte("hash-1"), now)
	must(t, "ConsumeEnrolToken", err)
	if id != a.ID {
		t.Fatalf("token account = %q, want %q", id, a.ID)
	}
	_, err = s.ConsumeEnrolToken(ctx, []byte("hash-1"), now)
	mustIs(t, "ConsumeEnrolToken reuse", err, store.ErrTokenInvalid)
	_, err = s.ConsumeEnrolToken(ctx, []byte("hash-2"), now.Add(2*time.Minute))
	mustIs(t, "ConsumeEnrolToken expired", err, store.ErrTokenInvalid)
	_, err = s.ConsumeEnrolToken(ctx, []byte("unknown"), now)
	mustIs(t, "ConsumeEnrolToken unknown", err, store.ErrTokenInvalid)
}

func testDevices(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	a := newAccount(t, s, 0)
	b := newAccount(t, s, 0)
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	d1, err := s.AddDevice(ctx, a.ID, k1, "laptop")
	must(t, "AddDevice", err)
	d2, err := s.AddDevice(ctx, a.ID, k2, "phone")
	must(t, "AddDevice", err)
	if d1.ID == "" || d1.ID == d2.ID || d1.Account != a.ID || d1.Name != "laptop" || !bytes.Equal(d1.NoiseKey, k1) || d1.Revoked || d1.Created.IsZero() {
		t.Fatalf("AddDevice = %+v / %+v", d1, d2)
	}
	_, err = s.AddDevice(ctx, a.ID, k1, "again")
	mustIs(t, "AddDevice reuse", err, store.ErrDeviceExists)
	_, err = s.AddDevice(ctx, b.ID, k1, "other account")
	mustIs(t, "AddDevice reuse across accounts", err, store.ErrDeviceExists)
	_, err = s.AddDevice(ctx, a.ID, []byte("short"), "bad")
	mustIs(t, "AddDevice short key", err, store.ErrInvalid)

	got, err := s.DeviceByKey(ctx, k2)
	must(t, "DeviceByKey", err)
	if got.ID != d2.ID || got.Account != a.ID || got.Name != "phone" {
		t.Fatalf("DeviceByKey = %+v", got)
	}
	_, err = s.DeviceByKey(ctx, bytes.Repeat([]byte{3}, 32))
	mustIs(t, "DeviceByKey unknown", err, store.ErrDeviceNotFound)

	must(t, "RevokeDevice", s.RevokeDevice(ctx, a.ID, d1.ID))
	mustIs(t, "RevokeDevice unknown", s.RevokeDevice(ctx, a.ID, "no-such-device"), store.ErrDeviceNotFound)
	mustIs(t, "RevokeDevice other account", s.RevokeDevice(ctx, b.ID, d2.ID), store.ErrDeviceNotFound)
	got, err = s.DeviceByKey(ctx, k1)
	must(t, "DeviceByKey revoked", err)
	if !got.Revoked {
		t.Fatal("revoked device not marked Revoked")
	}
	list, err := s.ListDevices(ctx, a.ID)
	must(t, "ListDevices", err)
	if len(list) != 2 {
		t.Fatalf("ListDevices = %+v", list)
	}
	for _, d := range list {
		if d.Revoked != (d.ID == d1.ID) {
			t.Fatalf("ListDevices revoked state wrong: %+v", list)
		}
	}
	list, err = s.ListDevices(ctx, b.ID)
	must(t, "ListDevices b", err)
	if len(list) != 0 {
		t.Fatalf("ListDevices of b = %+v", list)
	}
}
