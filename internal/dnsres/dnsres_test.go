package dnsres

import (
	"context"
	"errors"
	"testing"
)

func TestStatic(t *testing.T) {
	s := NewStatic()
	s.AddMX("Example.ORG.", "b.example.org", 20)
	s.AddMX("example.org", "a.example.org", 10)
	if err := s.AddIP("a.example.org", "not-an-ip"); err == nil {
		t.Fatal("bad IP accepted")
	}
	ctx := context.Background()
	mx, err := s.LookupMX(ctx, "EXAMPLE.org")
	if err != nil || len(mx) != 2 || mx[0].Host != "a.example.org" {
		t.Fatalf("MX: %v %v", err, mx)
	}
	if _, err := s.LookupTXT(ctx, "none.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	s.SetFail("example.org", true)
	if _, err := s.LookupMX(ctx, "example.org"); !errors.Is(err, ErrTemporary) {
		t.Fatalf("want ErrTemporary, got %v", err)
	}
}
