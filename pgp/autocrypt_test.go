package pgp

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestAutocryptHeader(t *testing.T) {
	alice := testKey(t, "alice@example.org")
	h := &AutocryptHeader{Addr: "alice@example.org", PreferEncrypt: true, KeyData: alice.PublicBinary()}
	v := h.String()
	for _, line := range strings.Split(v, "\r\n") {
		if len(line) > 78 {
			t.Fatalf("line too long: %d", len(line))
		}
	}
	got, err := ParseAutocrypt(v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != h.Addr || !got.PreferEncrypt || !bytes.Equal(got.KeyData, h.KeyData) {
		t.Fatalf("round trip %+v", got)
	}
	bad := []string{
		"",
		"addr=alice@example.org",
		"keydata=AAAA",
		"addr=alice@example.org; keydata=!!!notbase64",
		"addr=alice@example.org; critical=1; keydata=" + strings.ReplaceAll(v[strings.Index(v, "keydata=")+8:], "\r\n ", ""),
		"addr=alice@example.org; keydata=aGVsbG8=",
		"addr=a@b; addr=c@d; keydata=aGVsbG8=",
	}
	for _, b := range bad {
		if _, err := ParseAutocrypt(b); err == nil {
			t.Fatalf("accepted %q", b)
		}
	}
	ok := "addr=Alice@Example.org; _ignored=1; keydata=" + strings.ReplaceAll(v[strings.Index(v, "keydata=")+8:], "\r\n ", "")
	if got, err := ParseAutocrypt(ok); err != nil || got.Addr != "alice@example.org" || got.PreferEncrypt {
		t.Fatalf("non-critical attribute: %v", err)
	}
}

func TestAutocryptPeerUpdate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k1 := &AutocryptHeader{Addr: "bob@example.org", PreferEncrypt: true, KeyData: []byte("k1")}
	k2 := &AutocryptHeader{Addr: "bob@example.org", KeyData: []byte("k2")}
	var p AutocryptPeer
	p.Update(k1, t0)
	if p.Addr != "bob@example.org" || string(p.KeyData) != "k1" || !p.PreferEncrypt || !p.AutocryptTimestamp.Equal(t0) {
		t.Fatalf("first header: %+v", p)
	}
	p.Update(nil, t0.Add(time.Hour)) // a message without a header
	if !p.LastSeen.Equal(t0.Add(time.Hour)) || !p.AutocryptTimestamp.Equal(t0) || string(p.KeyData) != "k1" {
		t.Fatalf("no header: %+v", p)
	}
	p.Update(k2, t0.Add(30*time.Minute)) // older than last seen: ignored
	if string(p.KeyData) != "k1" {
		t.Fatal("older message replaced the key")
	}
	p.Update(&AutocryptHeader{Addr: "eve@example.org", KeyData: []byte("evil")}, t0.Add(2*time.Hour))
	if string(p.KeyData) != "k1" || !p.LastSeen.Equal(t0.Add(2*time.Hour)) {
		t.Fatal("header for another address was used")
	}
	p.Update(k2, t0.Add(3*time.Hour))
	if string(p.KeyData) != "k2" || p.PreferEncrypt {
		t.Fatalf("newer header: %+v", p)
	}
	p.Update(k1, time.Now().Add(1000*time.Hour)) // future date counts as now
	if p.LastSeen.After(time.Now()) {
		t.Fatal("future date stored")
	}
}
