package smtpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"smessenger/internal/dnsres"
	"smessenger/pgp"
)

func TestCheckSPF(t *testing.T) {
	r := dnsres.NewStatic()
	r.SetTXT("pass.test", "v=spf1 ip4:192.0.2.0/24 -all")
	r.SetTXT("fail.test", "v=spf1 -all")
	r.SetTXT("soft.test", "v=spf1 ~all")
	r.SetTXT("inc.test", "v=spf1 include:pass.test -all")
	r.SetTXT("redir.test", "v=spf1 redirect=pass.test")
	r.SetTXT("a.test", "v=spf1 a/24 -all")
	_ = r.AddIP("a.test", "192.0.2.200")
	r.SetTXT("mx.test", "v=spf1 mx -all")
	r.AddMX("mx.test", "mail.mx.test", 10)
	_ = r.AddIP("mail.mx.test", "192.0.2.7")
	r.SetTXT("six.test", "v=spf1 ip6:2001:db8::/32 -all")
	r.SetTXT("two.test", "v=spf1 -all", "v=spf1 +all")
	r.SetTXT("bad.test", "v=spf1 foo:bar -all")
	r.SetTXT("macro.test", "v=spf1 exists:%{i}._spf.macro.test -all")
	_ = r.AddIP("192.0.2.7._spf.macro.test", "127.0.0.2")
	r.SetFail("temp.test", true)
	// An include chain longer than the 10-lookup limit.
	for i := 0; i < 12; i++ {
		r.SetTXT(fmt.Sprintf("l%d.test", i), fmt.Sprintf("v=spf1 include:l%d.test -all", i+1))
	}
	r.SetTXT("l12.test", "v=spf1 +all")
	r.SetTXT("loop.test", "v=spf1 include:loop.test -all")

	ip := net.ParseIP("192.0.2.7")
	cases := []struct {
		domain string
		ip     net.IP
		want   SPFResult
	}{
		{"pass.test", ip, SPFPass},
		{"pass.test", net.ParseIP("198.51.100.1"), SPFFail},
		{"fail.test", ip, SPFFail},
		{"soft.test", ip, SPFSoftFail},
		{"inc.test", ip, SPFPass},
		{"redir.test", ip, SPFPass},
		{"a.test", ip, SPFPass},
		{"mx.test", ip, SPFPass},
		{"mx.test", net.ParseIP("192.0.2.8"), SPFFail},
		{"six.test", net.ParseIP("2001:db8::1"), SPFPass},
		{"six.test", ip, SPFFail},
		{"none.test", ip, SPFNone},
		{"two.test", ip, SPFPermError},
		{"bad.test", ip, SPFPermError},
		{"macro.test", ip, SPFPass},
		{"temp.test", ip, SPFTempError},
		{"l0.test", ip, SPFPermError},
		{"loop.test", ip, SPFPermError},
	}
	for _, c := range cases {
		t.Run(c.domain+"/"+c.ip.String(), func(t *testing.T) {
			got := CheckSPF(context.Background(), r, c.ip, "bob@"+c.domain, "helo.test")
			if got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseSPFErrors(t *testing.T) {
	for _, rec := range []string{"", "v=spf2", "v=spf1 ip4:300.1.1.1", "v=spf1 ip4:1.2.3.4/33", "v=spf1 a//129",
		"v=spf1 redirect=a redirect=b", "v=spf1 include:", "v=spf1 all:x", "v=spf1 ip6:1.2.3.4"} {
		if _, err := ParseSPF(rec); err == nil {
			t.Errorf("ParseSPF(%q) accepted", rec)
		}
	}
	terms, err := ParseSPF("v=spf1 +a:x.test/24//64 ?mx ~include:y.test exp=z.test -all")
	if err != nil || len(terms) != 5 || terms[0].Prefix4 != 24 || terms[0].Prefix6 != 64 || terms[2].Qualifier != '~' {
		t.Fatalf("ParseSPF: %v %+v", err, terms)
	}
}

func TestMXCheckMessage(t *testing.T) {
	cases := []struct {
		name, msg string
		want      error
	}{
		{"plain", "Subject: a\r\n\r\nb\r\n", nil},
		{"bare LF", "Subject: a\n\r\nb\r\n", ErrBareNewline},
		{"bare CR", "Subject: a\r\n\r\nb\rc\r\n", ErrBareNewline},
		{"header", "X: " + string(make([]byte, 200)) + "\r\n\r\n", ErrHeaderTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := mxCheckMessage([]byte(c.msg), 100)
			if !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestMXSummaryLimits: the MIME limits of the MX config reach
// pgp.SummarizeLimited, which counts the message itself among the parts
// and every multipart part and attached message as a level.
func TestMXSummaryLimits(t *testing.T) {
	lim := pgp.Limits{MaxParts: 4, MaxDepth: 2}
	cases := []struct {
		name, msg string
		want      error
	}{
		{"parts ok", "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\na\r\n--q\r\n\r\nb\r\n--q--\r\n", nil},
		{"parts", "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\n--q\r\n\r\n--q\r\n\r\n--q\r\n\r\n--q--\r\n", pgp.ErrTooManyParts},
		{"depth", "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n--b--\r\n--a--\r\n", pgp.ErrTooDeep},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := pgp.SummarizeLimited([]byte(c.msg), lim)
			if !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want != nil && !errors.Is(err, pgp.ErrLimit) {
				t.Fatalf("%v does not wrap pgp.ErrLimit", err)
			}
		})
	}
}
