package mtasts

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	good := "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET.\r\nmax_age: 86400\r\n"
	p, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeEnforce || p.MaxAge != 24*time.Hour || len(p.MX) != 2 || p.MX[1] != "*.example.net" {
		t.Fatalf("parsed %+v", p)
	}
	for _, tc := range []struct {
		name, body string
		ok         bool
		mode       Mode
	}{
		{"lf and unknown field", "version: STSv1\nmode: testing\nfoo: bar\nmx: a.example\nmax_age: 1\n", true, ModeTesting},
		{"none without mx", "version: STSv1\nmode: none\nmax_age: 0", true, ModeNone},
		{"clamped max_age", "version: STSv1\nmode: none\nmax_age: 9999999999", true, ModeNone},
		{"no version", "mode: enforce\nmx: a.example\nmax_age: 1\n", false, ""},
		{"bad version", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", false, ""},
		{"bad mode", "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", false, ""},
		{"no mode", "version: STSv1\nmx: a.example\nmax_age: 1\n", false, ""},
		{"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", false, ""},
		{"no max_age", "version: STSv1\nmode: enforce\nmx: a.example\n", false, ""},
		{"negative max_age", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", false, ""},
		{"long max_age", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n", false, ""},
		{"duplicate mode", "version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 1\n", false, ""},
		{"no colon", "version STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n", false, ""},
		{"bare wildcard", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n", false, ""},
		{"wildcard tld", "version: STSv1\nmode: enforce\nmx: *.com\nmax_age: 1\n", false, ""},
		{"inner wildcard", "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n", false, ""},
		{"control char", "version: STSv1\nmode: enforce\x00\nmx: a.example\nmax_age: 1\n", false, ""},
		{"html", "<html><body>not found</body></html>", false, ""},
		{"empty", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.body))
			if !tc.ok {
				if !errors.Is(err, ErrInvalidPolicy) || p != nil {
					t.Fatalf("want ErrInvalidPolicy, got %v %+v", err, p)
				}
				if !strings.HasPrefix(err.Error(), "mtasts: ") {
					t.Fatalf("error text %q", err)
				}
				return
			}
			if err != nil || p.Mode != tc.mode || p.MaxAge > MaxAgeLimit {
				t.Fatalf("got %+v %v", p, err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	p := &Policy{Mode: ModeEnforce, MX: []string{"mx1.example.com", "*.mail.example.net"}}
	for host, want := range map[string]bool{
		"mx1.example.com":         true,
		"MX1.Example.COM.":        true,
		"mx2.example.com":         false,
		"a.mail.example.net":      true,
		"mail.example.net":        false,
		"a.b.mail.example.net":    false,
		"amail.example.net":       false,
		"":                        false,
		"x.mail.example.net.evil": false,
	} {
		if got := p.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseTXT(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []string
		id   string
	}{
		{"plain", []string{"v=STSv1; id=20160831085700Z;"}, "20160831085700Z"},
		{"others discarded", []string{"v=spf1 -all", "v=STSv1;id=abc"}, "abc"},
		{"extension field", []string{"v=STSv1; foo=bar; id=X1"}, "X1"},
		{"none", []string{"v=spf1 -all"}, ""},
		{"two", []string{"v=STSv1; id=a", "v=STSv1; id=b"}, ""},
		{"no id", []string{"v=STSv1;"}, ""},
		{"bad id", []string{"v=STSv1; id=a-b"}, ""},
		{"long id", []string{"v=STSv1; id=" + strings.Repeat("a", 33)}, ""},
		{"wrong case", []string{"V=stsv1; id=a"}, ""},
		{"malformed field", []string{"v=STSv1; junk; id=a"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := ParseTXT(tc.recs)
			if tc.id == "" {
				if !errors.Is(err, ErrNoRecord) {
					t.Fatalf("want ErrNoRecord, got %q %v", id, err)
				}
				return
			}
			if err != nil || id != tc.id {
				t.Fatalf("got %q %v", id, err)
			}
		})
	}
}
