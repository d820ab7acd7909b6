package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseFigures(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want figures
		not  []string
	}{
		{"name value", "py_headers_warm_s 0.081\nsmtp_messages 2000\n", figures{"py_headers_warm_s": 0.081, "smtp_messages": 2000}, nil},
		{"trailing prose", "gpg_keygen_ms 40.1 (two gpg processes)\n", figures{"gpg_keygen_ms": 40.1}, nil},
		{"gocrypto", "gocrypto v4 encrypt binary 4096 msgs_per_s=13277 MB_per_s=54.4 us_per_msg=75.3 (SEIPDv1 AES256)\n",
			figures{"gocrypto/v4/encrypt/binary/4096/msgs_per_s": 13277, "gocrypto/v4/encrypt/binary/4096/MB_per_s": 54.4,
				"gocrypto/v4/encrypt/binary/4096/us_per_msg": 75.3}, nil},
		{"gpg", "gpg decrypt armor 65536 msgs_per_s=171 MB_per_s=11.20 ms_per_msg=5.85 (process spawn included)\n",
			figures{"gpg/decrypt/armor/65536/msgs_per_s": 171, "gpg/decrypt/armor/65536/MB_per_s": 11.2, "gpg/decrypt/armor/65536/ms_per_msg": 5.85}, nil},
		{"text values ignored", "imap_target 127.0.0.1:1234\ngpg_version 2.2.40 libgcrypt 1.10.1\ndovecot_version 2.3.19.1\n", figures{},
			[]string{"imap_target", "gpg_version", "dovecot_version"}},
		{"comments and junk", "# kept /tmp/x\n\n   \nTraceback (most recent call last):\nx=1 y=2\nname NaN\nname2 +Inf\n", figures{},
			[]string{"name", "name2", "#"}},
		{"bad kv value", "gocrypto v4 encrypt binary 4096 msgs_per_s=fast MB_per_s=1\n",
			figures{"gocrypto/v4/encrypt/binary/4096/MB_per_s": 1}, []string{"gocrypto/v4/encrypt/binary/4096/msgs_per_s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := parseFigures(strings.NewReader(c.in))
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("got %d figures %v, want %d", len(got), got, len(c.want))
			}
			for _, k := range c.not {
				if _, ok := got[k]; ok {
					t.Errorf("%s should not be a figure", k)
				}
			}
		})
	}
}

func TestParseFiguresLongLine(t *testing.T) {
	in := "a 1\n" + strings.Repeat("x", maxFigureLine+10) + " 2\nb 3\n"
	got := parseFigures(strings.NewReader(in))
	// The scanner stops at the overlong line: what came before is kept and
	// nothing panics or grows without bound.
	if got["a"] != 1 {
		t.Fatalf("lost the figure before an overlong line: %v", got)
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tbench\nVmPeak:\t  123456 kB\nVmHWM:\t   54321 kB\nVmRSS:\t   40000 kB\nBad:\t x kB\nEmpty:\n"
	if v, err := parseStatusKB(status, "VmHWM"); err != nil || v != 54321 {
		t.Fatalf("VmHWM = %d, %v", v, err)
	}
	if v, err := parseStatusKB(status, "VmRSS"); err != nil || v != 40000 {
		t.Fatalf("VmRSS = %d, %v", v, err)
	}
	for _, f := range []string{"VmSwap", "Bad", "Empty", "VmH"} {
		if _, err := parseStatusKB(status, f); !errors.Is(err, errNoField) {
			t.Errorf("%s: err = %v, want errNoField", f, err)
		}
	}
}

func TestParseCorpusInfo(t *testing.T) {
	ci, err := parseCorpusInfo([]byte(`{"n": 5000, "seed": 42, "total_bytes": 159358717, "token": "zephyrquux", "token_messages": 47}`))
	if err != nil || ci.N != 5000 || ci.Token != "zephyrquux" || ci.TokenMessages != 47 {
		t.Fatalf("got %+v, %v", ci, err)
	}
	for _, bad := range []string{`{"n": 0, "total_bytes": 1}`, `{"n": 5, "total_bytes": 1, "token_messages": 6}`, `{"n": -1}`} {
		if _, err := parseCorpusInfo([]byte(bad)); !errors.Is(err, errCorpus) {
			t.Errorf("%s: err = %v, want errCorpus", bad, err)
		}
	}
	if _, err := parseCorpusInfo([]byte(`{"n": `)); err == nil || errors.Is(err, errCorpus) {
		t.Errorf("truncated JSON: err = %v, want a decode error", err)
	}
}

func TestTable(t *testing.T) {
	rows := []row{
		{"fig | one", "msgs/s", measured(1171.4), measured(4492), "sink"},
		{"fig two", "s", missing("bridge did not\nsync"), measured(0.049), "Dovecot"},
		{"fig three", "MB", measured(0.5), value{}, "–"},
	}
	var b bytes.Buffer
	writeTable(&b, rows)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("want header, rule and 3 rows, got %d lines:\n%s", len(lines), b.String())
	}
	for _, want := range []string{"| fig / one | msgs/s | 1171 | sink | 4492 | 0.26 |",
		"| fig two | s | not measured: bridge did not sync | Dovecot | 0.049 | – |",
		"| fig three | MB | 0.500 | – | – | – |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	for _, l := range lines {
		if strings.Count(l, "|") != 7 {
			t.Errorf("row with a wrong column count: %q", l)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	for in, want := range map[float64]string{12345.6: "12346", 123.4: "123", 12.34: "12.3", 1.234: "1.23", 0.1234: "0.123", 0: "0.000"} {
		if got := formatNumber(in); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestSkippedLine(t *testing.T) {
	if got := skippedLine("x 1\ndovecot_skipped dovecot-imapd not installed (run: bash setup.sh)\n"); got != "dovecot-imapd not installed (run: bash setup.sh)" {
		t.Fatalf("got %q", got)
	}
	if got := skippedLine("smtp_target smtp-sink\n"); got != "" {
		t.Fatalf("got %q", got)
	}
}

func FuzzParseFigures(f *testing.F) {
	for _, s := range []string{
		"py_headers_warm_s 0.081\n",
		"gocrypto v6 decrypt binary 1048576 msgs_per_s=259 MB_per_s=271.2 us_per_msg=3861 (SEIPDv2 AES256 OCB)\n",
		"gpg encrypt armor bulk_64MiB MB_per_s=104.0 (one process)\n",
		"# comment\nx=1\n=\n a =b\nname 1e400\n",
		"\x00\xff 1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for k, v := range parseFigures(strings.NewReader(in)) {
			if k == "" || v != v {
				t.Fatalf("bad figure %q = %v", k, v)
			}
		}
	})
}

func FuzzParseStatusKB(f *testing.F) {
	f.Add("VmHWM:\t 1 kB\n", "VmHWM")
	f.Add("VmHWM:\n", "VmHWM")
	f.Add("VmHWM: -5 kB", "VmHWM")
	f.Fuzz(func(t *testing.T, status, field string) {
		v, err := parseStatusKB(status, field)
		if err == nil && v < 0 {
			t.Fatalf("negative size %d", v)
		}
		if err != nil && !errors.Is(err, errNoField) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

func FuzzParseCorpusInfo(f *testing.F) {
	f.Add([]byte(`{"n": 5000, "total_bytes": 159358717, "token": "zephyrquux", "token_messages": 47}`))
	f.Add([]byte(`{"n": 1e9}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ci, err := parseCorpusInfo(b)
		if err == nil && (ci.N <= 0 || ci.TokenMessages > ci.N) {
			t.Fatalf("accepted implausible %+v", ci)
		}
	})
}
