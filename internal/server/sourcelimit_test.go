package server

import (
	"net"
	"testing"
	"time"
)

func TestSourceLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newSourceLimiter(3, func() time.Time { return now })
	a, b := net.ParseIP("127.0.0.1"), net.ParseIP("::1")
	for i := 0; i < 3; i++ {
		if !l.allow(a) {
			t.Fatalf("connection %d refused", i)
		}
	}
	if l.allow(a) {
		t.Fatal("fourth connection in a minute allowed")
	}
	if !l.allow(b) {
		t.Fatal("other source limited")
	}
	secret := string(l.secret)
	now = now.Add(time.Minute)
	if !l.allow(a) {
		t.Fatal("window did not reset")
	}
	if string(l.secret) != secret {
		t.Fatal("key rotated before an hour")
	}
	now = now.Add(time.Hour)
	l.allow(a)
	if string(l.secret) == secret || l.size() != 1 {
		t.Fatalf("key not rotated or state kept after an hour (size %d)", l.size())
	}
	// The state holds only keyed hashes: no key equals the address bytes.
	for k := range l.counts {
		if string(k[:]) == string(a.To16()) {
			t.Fatal("address stored in clear")
		}
	}
}

func TestSourceLimiterUnlimited(t *testing.T) {
	l := newSourceLimiter(-1, nil)
	for i := 0; i < 1000; i++ {
		if !l.allow(net.ParseIP("10.0.0.1")) {
			t.Fatal("unlimited limiter refused")
		}
	}
	if l.size() != 0 {
		t.Fatal("unlimited limiter kept state")
	}
}
