package mtasts

import (
	"errors"
	"testing"
)

// FuzzParse feeds policy bodies as an HTTPS server would send them: a
// policy comes out valid or the error is ErrInvalidPolicy, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n"))
	f.Add([]byte("version: STSv1\nmode: none\nmax_age: 0"))
	f.Add([]byte("version: STSv1\nmode: testing\nmx: *.\nmax_age: 99999999999\n"))
	f.Add([]byte("\n\n:\r\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) || p != nil {
				t.Fatalf("bad failure: %v %v", p, err)
			}
			return
		}
		if p.MaxAge < 0 || p.MaxAge > MaxAgeLimit {
			t.Fatalf("max_age %v", p.MaxAge)
		}
		if p.Mode != ModeNone && len(p.MX) == 0 {
			t.Fatal("policy without mx")
		}
		for _, pat := range p.MX {
			if !validPattern(pat) {
				t.Fatalf("invalid pattern %q kept", pat)
			}
		}
		_ = p.Match("mail.example.com")
	})
}

// FuzzParseTXT feeds "_mta-sts" TXT records.
func FuzzParseTXT(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;", "v=spf1 -all")
	f.Add("v=STSv1", "")
	f.Add("v=STSv1;;;=;id=", "v=STSv1; id=x")
	f.Fuzz(func(t *testing.T, a, b string) {
		id, err := ParseTXT([]string{a, b})
		if err != nil {
			if !errors.Is(err, ErrNoRecord) || id != "" {
				t.Fatalf("bad failure: %q %v", id, err)
			}
			return
		}
		if id == "" || len(id) > 32 || !alnum(id) {
			t.Fatalf("bad id %q", id)
		}
	})
}
